"""DCGAN-style networks of the VAE-GAN (Larsen et al. 2016): encoder, decoder and discriminator.

Plain functional Keras builders, found by name through `trainer.choices.NETWORKS`. Every network works at any
`image_size` that is 4 * 2**n (32, 64, 128, ...): it has `n` strided 5x5 stages whose widths double from
`base_filters` (capped at 8x), so the smallest feature map is always 4x4.
- `dcgan_encoder`: image -> (mean, log_variance) of a `latent_dim` Gaussian (strided convs + BatchNorm + ReLU).
  BatchNorm is synchronised over replicas (batch statistics of the global batch) when the network is built under
  a strategy with more than one replica (`batch_norm`).
- `dcgan_decoder`: latent -> tanh RGB image, the encoder mirrored with transposed convs.
- `dcgan_discriminator`: image -> (logit, features): strided convs + LeakyReLU; `features` is the output of the
  second stage (image_size / 4: the resolution of Larsen et al.'s Dis_l at 64 px), the layer whose activations
  give the learned-similarity reconstruction loss.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from trainer.networks.fused_norm import batch_normalization

KERNEL = 5
MAX_WIDTH_MULTIPLIER = 8
BN_MOMENTUM = 0.9  # moving statistics settle within a few hundred steps (samples look right early on)
SMALLEST_MAP = 4
DEFAULT_FEATURE_STAGE = 1  # features at image_size / 4


def batch_norm() -> layers.BatchNormalization:
    """BatchNorm whose training-mode statistics are those of the global batch when the current strategy (the one
    whose scope the network is built in) has several replicas, as they are on one device."""
    synchronized = tf.distribute.get_strategy().num_replicas_in_sync > 1
    return batch_normalization(momentum=BN_MOMENTUM, synchronized=synchronized)


def stage_count(image_size: int) -> int:
    """Number of stride-2 stages from `image_size` down to the 4x4 map."""
    stages = int(round(math.log2(image_size / SMALLEST_MAP)))
    if stages < 1 or SMALLEST_MAP * 2 ** stages != image_size:
        raise ValueError(f"DCGAN networks need image_size = 4 * 2**n (32, 64, 128, ...), got {image_size}")
    return stages


def stage_widths(image_size: int, base_filters: int) -> list[int]:
    """Filters of each downsampling stage, doubling from `base_filters`, capped at 8 * base_filters."""
    return [base_filters * min(2 ** i, MAX_WIDTH_MULTIPLIER) for i in range(stage_count(image_size))]


def dcgan_encoder(image_size: int = 64, latent_dim: int = 100, base_filters: int = 64,
                  name: str = "encoder") -> keras.Model:
    images = keras.Input([image_size, image_size, 3], name="images")
    x = images
    for width in stage_widths(image_size, base_filters):
        x = layers.Conv2D(width, KERNEL, strides=2, padding="same", use_bias=False)(x)
        x = batch_norm()(x)
        x = layers.ReLU()(x)
    x = layers.Flatten()(x)
    mean = layers.Dense(latent_dim, name="mean")(x)
    log_variance = layers.Dense(latent_dim, name="log_variance")(x)
    return keras.Model(images, [mean, log_variance], name=name)


def dcgan_decoder(image_size: int = 64, latent_dim: int = 100, base_filters: int = 64,
                  name: str = "decoder") -> keras.Model:
    widths = stage_widths(image_size, base_filters)
    latent = keras.Input([latent_dim], name="latent")
    x = layers.Dense(SMALLEST_MAP * SMALLEST_MAP * widths[-1], use_bias=False)(latent)
    x = batch_norm()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape([SMALLEST_MAP, SMALLEST_MAP, widths[-1]])(x)
    for width in reversed(widths[:-1]):
        x = layers.Conv2DTranspose(width, KERNEL, strides=2, padding="same", use_bias=False)(x)
        x = batch_norm()(x)
        x = layers.ReLU()(x)
    rgb = layers.Conv2DTranspose(3, KERNEL, strides=2, padding="same", activation="tanh", name="rgb")(x)
    return keras.Model(latent, rgb, name=name)


def dcgan_discriminator(image_size: int = 64, base_filters: int = 64, name: str = "discriminator",
                        feature_stage: int | None = None) -> keras.Model:
    """Two outputs: the real/fake logit [N, 1] and the features of stage `feature_stage` (default 1, the second)."""
    widths = stage_widths(image_size, base_filters)
    feature_stage = DEFAULT_FEATURE_STAGE if feature_stage is None else feature_stage
    if not 0 <= feature_stage < len(widths):
        raise ValueError(f"feature_stage must be in [0, {len(widths) - 1}], got {feature_stage}")
    images = keras.Input([image_size, image_size, 3], name="images")
    x, features = images, None
    for stage, width in enumerate(widths):
        x = layers.Conv2D(width, KERNEL, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
        if stage == feature_stage:
            features = x
    logit = layers.Dense(1, name="logit")(layers.Flatten()(x))
    return keras.Model(images, [logit, features], name=name)
