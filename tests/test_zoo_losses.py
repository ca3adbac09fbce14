"""The model zoo's losses, critic options and DiffAugment against their direct formulas (no training)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer import losses, networks
from trainer.augment import diff_augment

RNG = np.random.default_rng(0)


def test_gradient_penalty_equals_the_formula_on_hand_computed_interpolates():
    real = RNG.uniform(-1, 1, [3, 4, 4, 3]).astype(np.float32)
    fake = RNG.uniform(-1, 1, [3, 4, 4, 3]).astype(np.float32)
    alpha = np.array([0.0, 0.3, 1.0], np.float32)
    x_hat = alpha[:, None, None, None] * real + (1 - alpha[:, None, None, None]) * fake
    # D(x) = 0.5 * sum(x^2) * w has the gradient w * x: its norm at x_hat is w * ||x_hat||
    w = 0.2

    def critic(x):
        return 0.5 * w * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    got = losses.gradient_penalty(critic, tf.constant(real), tf.constant(fake), tf.constant(alpha), 10.0)
    expected = 10.0 * (w * np.linalg.norm(x_hat.reshape(3, -1), axis=1) - 1.0) ** 2
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.interpolates(real, fake, alpha).numpy(), x_hat, rtol=1e-6)


def test_losses_by_name_match_their_formulas():
    real, fake = tf.constant([[2.0], [-1.0]]), tf.constant([[0.5], [-3.0]])
    d, g = losses.get_gan_losses("hinge")
    np.testing.assert_allclose(d(real, fake), [0 + 1.5, 2 + 0])
    np.testing.assert_allclose(g(fake), [-0.5, 3.0])
    d, g = losses.get_gan_losses("wasserstein")
    np.testing.assert_allclose(d(real, fake), [0.5 - 2.0, -3.0 + 1.0])
    np.testing.assert_allclose(g(fake), [-0.5, 3.0])
    d, g = losses.get_gan_losses("non_saturating")
    sigmoid = 1 / (1 + np.exp(-np.array([2.0, -1.0, 0.5, -3.0])))
    np.testing.assert_allclose(d(real, fake), -np.log(sigmoid[:2]) - np.log(1 - sigmoid[2:]), rtol=1e-5)
    np.testing.assert_allclose(g(fake), -np.log(sigmoid[2:]), rtol=1e-5)


def test_weight_clipping_keeps_every_critic_weight_in_range():
    critic = networks.build("conv_critic", image_size=16, base_filters=4, norm="batch", clip_value=0.01,
                            num_classes=3)
    optimizer = tf.keras.optimizers.RMSprop(learning_rate=0.5)  # huge steps: every weight would leave the box
    images = tf.random.uniform([4, 16, 16, 3], -1, 1)
    labels = tf.constant([0, 1, 2, 0], tf.int64)
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(critic([images, labels], training=True))
        variables = critic.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    assert len(variables) > 6
    for variable in variables:
        assert float(tf.reduce_max(tf.abs(variable))) <= 0.01 + 1e-7, variable.path


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_wgan_gp_critic_has_no_batch_norm(norm):
    critic = networks.build("conv_critic", image_size=16, base_filters=4, norm=norm)
    kinds = {type(layer).__name__ for layer in critic.layers}
    assert "BatchNormalization" not in kinds and (norm != "layer" or "LayerNormalization" in kinds)


def test_spectral_norm_wraps_every_weighted_critic_layer():
    critic = networks.build("conv_critic", image_size=16, base_filters=4, spectral_norm=True)
    wrapped = [layer for layer in critic.layers if type(layer).__name__ == "SpectralNormalization"]
    assert len(wrapped) == 3  # two convs and the score


def test_diffaugment_keeps_shapes_and_ranges_and_is_differentiable():
    generator = networks.build("conv_generator", image_size=16, latent_dim=8, base_filters=4)
    z = tf.random.normal([6, 8])
    seed = tf.constant([1, 2], tf.int64)
    for policy in [("color",), ("translation",), ("cutout",), ("color", "translation", "cutout")]:
        with tf.GradientTape() as tape:
            fake = generator(z, training=True)
            augmented = diff_augment(fake, policy, seed)
            loss = tf.reduce_sum(augmented)
        assert augmented.shape == fake.shape
        assert float(tf.reduce_max(tf.abs(augmented))) <= 1.0
        gradients = tape.gradient(loss, generator.trainable_variables)
        assert all(g is not None for g in gradients)
        assert sum(float(tf.reduce_sum(tf.abs(g))) for g in gradients) > 0, policy
    images = tf.ones([2, 16, 16, 3])
    cut = diff_augment(images, ("cutout",), seed)
    zeroed = tf.reduce_sum(tf.cast(cut[..., 0] == 0, tf.int32), axis=[1, 2]).numpy()
    assert ((16 <= zeroed) & (zeroed <= 64)).all(), zeroed  # an 8x8 square, cut by the border at worst to 4x4
    np.testing.assert_array_equal(diff_augment(images, ("cutout",), seed), cut)  # stateless: same seed, same
    assert diff_augment(images, (), seed) is images
