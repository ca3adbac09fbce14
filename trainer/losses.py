"""GAN and autoencoder losses, GAN losses picked by name (as in LynnHo's tf2gan/loss.py; the names, TF-free, are
`trainer.choices.GAN_LOSSES`).

Every function returns a per-example loss vector [batch]; the model reduces it with
`tf.nn.compute_average_loss(..., global_batch_size=...)` so that gradients are right under tf.distribute.
"""
from __future__ import annotations

import tensorflow as tf

from trainer.choices import LSGAN, NON_SATURATING


def _per_example_mean(x: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def non_saturating_d(real_logits, fake_logits):
    """Discriminator loss of the non-saturating GAN: -log D(real) - log(1 - D(fake))."""
    real = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(real_logits), real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(fake_logits), fake_logits)
    return _per_example_mean(real) + _per_example_mean(fake)


def non_saturating_g(fake_logits):
    """Generator loss of the non-saturating GAN: -log D(fake)."""
    return _per_example_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(fake_logits), fake_logits))


def lsgan_d(real_logits, fake_logits):
    """Least-squares GAN discriminator loss (CycleGAN): (D(real) - 1)^2 + D(fake)^2, halved."""
    return 0.5 * (_per_example_mean(tf.square(real_logits - 1.0)) + _per_example_mean(tf.square(fake_logits)))


def lsgan_g(fake_logits):
    return _per_example_mean(tf.square(fake_logits - 1.0))


GAN_LOSSES = {
    NON_SATURATING: (non_saturating_d, non_saturating_g),
    LSGAN: (lsgan_d, lsgan_g),
}


def get_gan_losses(name: str):
    """(discriminator_loss, generator_loss) by name."""
    try:
        return GAN_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown GAN loss {name!r}; known: {', '.join(GAN_LOSSES)}") from None


def l1(a, b):
    return _per_example_mean(tf.abs(a - b))


def l2(a, b):
    return _per_example_mean(tf.square(a - b))


def kl_divergence(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over latent dims."""
    return -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mean) - tf.exp(log_var), axis=1)
