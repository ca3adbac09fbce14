"""The RGB convs on 2×2 blocks (`trainer/networks/space_to_depth_conv.py`) compute Conv2D's sums and gradients, keep
Conv2D's variables (checkpoints restore either way), and fall back to Conv2D where blocks cannot be used."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from trainer.networks import fused_norm, resnet
from trainer.networks.space_to_depth_conv import SpaceToDepthConv2D, valid_conv2d


def _outputs_and_gradients(layer_class, kernel, bias, images):
    layer = layer_class(kernel.shape[-1], kernel.shape[0], padding="valid", use_bias=bias is not None)
    layer.build(images.shape)
    layer.kernel.assign(kernel)
    if bias is not None:
        layer.bias.assign(bias)
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = layer(images)
        loss = tf.reduce_sum(outputs * tf.sin(outputs))  # a loss whose gradient differs per pixel
    return [outputs, *tape.gradient(loss, [images, *layer.trainable_variables])]


@pytest.mark.parametrize("size, kernel_size, channels_in, channels_out, bias", [
    (38, 7, 3, 8, True),     # a generator's first layer (reflection-padded 32 px)
    (38, 7, 8, 3, True),     # its last layer
    (19, 4, 3, 5, False),    # an even kernel, an odd input: 16 px out
    (17, 3, 3, 4, True),     # an odd output (15 px): plain Conv2D
])
def test_block_conv_equals_conv2d_forward_and_backward(size, kernel_size, channels_in, channels_out, bias):
    images = tf.random.stateless_normal([2, size, size, channels_in], [1, 2])
    kernel = tf.random.stateless_normal([kernel_size, kernel_size, channels_in, channels_out], [3, 4]) * 0.2
    bias_value = tf.random.stateless_normal([channels_out], [5, 6]) if bias else None
    expected = _outputs_and_gradients(layers.Conv2D, kernel, bias_value, images)
    got = _outputs_and_gradients(SpaceToDepthConv2D, kernel, bias_value, images)
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        assert want.shape == have.shape
        scale = float(tf.reduce_max(tf.abs(want)))
        np.testing.assert_allclose(have.numpy(), want.numpy(), rtol=1e-4, atol=1e-5 * scale)


def test_blocks_only_where_a_side_is_rgb_and_the_fused_kernels_are_on():
    rgb, wide = tf.keras.Input((16, 16, 3)), tf.keras.Input((16, 16, 8))
    kinds = lambda x, filters: type(valid_conv2d(x, filters, 3)._keras_history.operation)  # noqa: E731
    assert kinds(rgb, 8) is SpaceToDepthConv2D and kinds(wide, 3) is SpaceToDepthConv2D
    assert kinds(wide, 8) is layers.Conv2D
    with fused_norm.kernels(False):
        assert kinds(rgb, 8) is layers.Conv2D


def test_a_generator_checkpoint_restores_into_either_kind_of_layer(tmp_path):
    with fused_norm.kernels(False):
        plain = resnet.resnet_generator(32, base_filters=4, n_blocks=1)
    blocks = resnet.resnet_generator(32, base_filters=4, n_blocks=1)
    assert any(isinstance(layer, SpaceToDepthConv2D) for layer in blocks.layers)
    for variable in plain.variables:
        variable.assign(tf.random.stateless_normal(variable.shape, [7, len(variable.name)]) * 0.1)
    path = tf.train.Checkpoint(generator=plain).save(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(generator=blocks).restore(path).assert_existing_objects_matched()
    images = tf.random.stateless_uniform([2, 32, 32, 3], [8, 9], -1.0, 1.0)
    np.testing.assert_allclose(blocks(images, training=True).numpy(), plain(images, training=True).numpy(),
                               rtol=1e-4, atol=1e-5)
