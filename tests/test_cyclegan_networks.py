"""The CycleGAN networks (`trainer/networks/resnet.py`): shapes at several sizes, the reference's parameter
counts, reflection padding and instance normalisation."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import networks
from trainer.networks.resnet import ReflectionPadding2D, discriminator_strided_layers, instance_norm


def images(size: int, n: int = 2) -> np.ndarray:
    return np.random.RandomState(size).uniform(-1, 1, [n, size, size, 3]).astype(np.float32)


def test_both_builders_are_registered():
    assert {"resnet_generator", "patchgan_discriminator"} <= set(networks.names())


@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_maps_an_image_to_an_image_of_the_same_size(size):
    generator = networks.build("resnet_generator", image_size=size, base_filters=4, n_blocks=1)
    out = generator(images(size), training=False).numpy()
    assert out.shape == (2, size, size, 3) and out.dtype == np.float32
    assert np.abs(out).max() < 1.0  # tanh


@pytest.mark.parametrize("size, patches", [(16, 2), (32, 2), (64, 6), (128, 14)])
def test_discriminator_gives_a_patch_map_even_for_tiny_images(size, patches):
    discriminator = networks.build("patchgan_discriminator", image_size=size, base_filters=4)
    assert discriminator(images(size), training=False).shape == (2, patches, patches, 1)


def test_discriminator_keeps_the_70_pixel_design_from_32_pixels_up():
    assert [discriminator_strided_layers(s) for s in (16, 32, 64, 256, None)] == [2, 3, 3, 3, 3]


@pytest.mark.parametrize("n_blocks, reference", [(6, 7_837_699), (9, 11_378_179)])
def test_generator_parameter_count_matches_the_reference(n_blocks, reference):
    """The reference (pytorch-CycleGAN-and-pix2pix, 64 filters: 7.838 M and 11.378 M) has a conv bias before a
    non-affine instance norm; here the conv has no bias and the norm a scale and an offset: one more parameter
    per normalised channel."""
    generator = networks.build("resnet_generator", base_filters=64, n_blocks=n_blocks)
    residual_adds = [layer for layer in generator.layers if isinstance(layer, keras.layers.Add)]
    assert len(residual_adds) == n_blocks
    normalised_channels = sum(int(layer.gamma.shape[0]) for layer in generator.layers
                              if isinstance(layer, keras.layers.GroupNormalization))
    assert generator.count_params() - normalised_channels == reference


def test_discriminator_parameter_count_matches_the_reference():
    assert networks.build("patchgan_discriminator", base_filters=64).count_params() == 2_765_633


def test_reflection_padding_mirrors_the_edges_without_repeating_them():
    x = tf.reshape(tf.range(2 * 4 * 5 * 3, dtype=tf.float32), [2, 4, 5, 3])
    padded = ReflectionPadding2D(2)(x)
    assert padded.shape == (2, 8, 9, 3)
    np.testing.assert_array_equal(padded.numpy(), tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], "REFLECT").numpy())
    assert ReflectionPadding2D.from_config(ReflectionPadding2D(3).get_config()).padding == 3


def test_instance_norm_normalises_each_image_and_channel_on_its_own():
    channel_scale = np.array([1.0, 5.0, 0.1], np.float32)
    image_offset = np.array([3.0, -2.0, 0.0], np.float32).reshape(3, 1, 1, 1)
    x = images(8, n=3) * channel_scale + image_offset
    y = instance_norm()(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1.0, atol=1e-2)
