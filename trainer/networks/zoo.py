"""The model zoo's networks (gan-toolkit's choices, INTERFACE.md section 8), found by name through
`trainer.choices.NETWORKS`:
- `mlp_generator` / `mlp_critic`: fully connected, as Goodfellow et al. 2014 (the `gan` choice);
- `conv_generator`: the DCGAN generator (Radford et al. 2016: transposed convs, BatchNorm, ReLU, tanh out), which is
  `dcgan.dcgan_decoder`; `conv_critic`: strided convs + LeakyReLU(0.2), normalised by `norm` (`batch` for DCGAN
  and WGAN, `layer` or `none` for WGAN-GP, whose penalty is per example), one score out and no sigmoid (every
  loss takes logits). Both sized from the image size (4 * 2**n).
With `num_classes` > 0 a network is class-conditional (Mirza & Osindero 2014, `cgan`): it takes `[x, label]`; the
generator concatenates a label embedding to the latent, the critic an embedded label plane to the image channels
and adds a projection of its features on a label embedding to its score (Miyato & Koyama 2018).
Critic options: `spectral_norm` wraps every conv and dense layer (Miyato et al. 2018); `clip_value` > 0 keeps every
weight in [-c, c] after each optimizer update (WGAN's weight clipping, as Keras weight constraints).
"""
from __future__ import annotations

import math

import keras
from keras import layers, ops

from trainer.networks.dcgan import BN_MOMENTUM, KERNEL, batch_norm, dcgan_decoder, stage_widths

LEAK = 0.2
MLP_WIDTH_MULTIPLIER = 4  # MLP hidden widths grow from `base_filters` to at most 4x


def synchronized_batch_norm() -> bool:
    """Batch statistics of the global batch when there are several replicas (as `dcgan.batch_norm`)."""
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync > 1


class Clip(keras.constraints.Constraint):
    """WGAN's weight clipping: every weight in [-value, value]."""

    def __init__(self, value: float):
        self.value = float(value)

    def __call__(self, w):
        return ops.clip(w, -self.value, self.value)

    def get_config(self):
        return {"value": self.value}


def _conditioning(num_classes: int, name: str):
    """The int64 [N] label input of a conditional network (None when unconditional)."""
    return keras.Input([], dtype="int64", name=f"{name}_label") if num_classes else None


def mlp_widths(base_filters: int, hidden_layers: int) -> list[int]:
    return [base_filters * min(2 ** i, MLP_WIDTH_MULTIPLIER) for i in range(hidden_layers)]


def conv_generator(image_size: int = 64, latent_dim: int = 100, base_filters: int = 64, num_classes: int = 0,
                   name: str = "generator", **_) -> keras.Model:
    """latent (+ label) -> tanh RGB image: DCGAN's generator (`dcgan.dcgan_decoder`)."""
    if not num_classes:
        return dcgan_decoder(image_size, latent_dim, base_filters, name=name)
    latent, label = keras.Input([latent_dim], name="latent"), _conditioning(num_classes, "generator")
    embedded = layers.Embedding(num_classes, latent_dim, name="label_embedding")(label)
    body = dcgan_decoder(image_size, 2 * latent_dim, base_filters, name=f"{name}_body")
    return keras.Model([latent, label], body(layers.Concatenate()([latent, embedded])), name=name)


def mlp_generator(image_size: int = 64, latent_dim: int = 100, base_filters: int = 256, hidden_layers: int = 3,
                  num_classes: int = 0, name: str = "generator", **_) -> keras.Model:
    """latent (+ label) -> tanh RGB image through `hidden_layers` dense layers (BatchNorm, LeakyReLU)."""
    latent, label = keras.Input([latent_dim], name="latent"), _conditioning(num_classes, "generator")
    x = latent
    if label is not None:
        x = layers.Concatenate()([x, layers.Embedding(num_classes, latent_dim, name="label_embedding")(label)])
    for width in mlp_widths(base_filters, hidden_layers):
        x = layers.Dense(width, use_bias=False)(x)
        x = batch_norm()(x)
        x = layers.LeakyReLU(LEAK)(x)
    x = layers.Dense(image_size * image_size * 3, activation="tanh")(x)
    rgb = layers.Reshape([image_size, image_size, 3], name="rgb")(x)
    return keras.Model(latent if label is None else [latent, label], rgb, name=name)


class _CriticLayers:
    """Builds a critic's layers with its options (spectral norm, weight clipping, normalisation) applied."""

    def __init__(self, norm: str, spectral_norm: bool, clip_value: float):
        self.norm, self.spectral_norm = norm, spectral_norm
        self.constraint = Clip(clip_value) if clip_value and clip_value > 0 else None

    def weighted(self, layer_class, *args, **kwargs):
        layer = layer_class(*args, kernel_constraint=self.constraint, bias_constraint=self.constraint, **kwargs)
        return layers.SpectralNormalization(layer) if self.spectral_norm else layer

    def normalize(self, x, axes):
        if self.norm == "batch":
            return layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=synchronized_batch_norm(),
                                             beta_constraint=self.constraint, gamma_constraint=self.constraint)(x)
        if self.norm == "layer":
            return layers.LayerNormalization(axis=axes, beta_constraint=self.constraint,
                                             gamma_constraint=self.constraint)(x)
        if self.norm != "none":
            raise ValueError(f"unknown critic normalisation {self.norm!r}; known: batch, layer, none")
        return x

    def embedding(self, num_classes: int, size: int, name: str = "label_embedding"):
        return layers.Embedding(num_classes, size, embeddings_constraint=self.constraint, name=name)

    def score(self, x, label=None, num_classes: int = 0):
        """The score of features `x` [N, F]: linear, plus for a conditional critic the projection of `x` on
        the label's embedding (Miyato & Koyama 2018), which ties the score to the class."""
        score = self.weighted(layers.Dense, 1, name="score")(x)
        if label is None:
            return score
        projection = layers.Dot(axes=1)([self.embedding(num_classes, int(x.shape[-1]), "label_projection")(label), x])
        return layers.Add(name="score_and_projection")([score, projection])


def _image_and_label(image_size: int, num_classes: int):
    images, label = keras.Input([image_size, image_size, 3], name="images"), _conditioning(num_classes, "critic")
    inputs = images if label is None else [images, label]
    return images, label, inputs


def conv_critic(image_size: int = 64, base_filters: int = 64, norm: str = "batch", spectral_norm: bool = False,
                clip_value: float = 0.0, num_classes: int = 0, name: str = "critic", **_) -> keras.Model:
    """image (+ label) -> score [N, 1]: DCGAN's discriminator without the sigmoid (no norm on the first stage)."""
    build = _CriticLayers(norm, spectral_norm, clip_value)
    images, label, inputs = _image_and_label(image_size, num_classes)
    x = images
    if label is not None:  # the label as one more image channel
        plane = build.embedding(num_classes, image_size * image_size)(label)
        x = layers.Concatenate()([x, layers.Reshape([image_size, image_size, 1])(plane)])
    for stage, width in enumerate(stage_widths(image_size, base_filters)):
        x = build.weighted(layers.Conv2D, width, KERNEL, strides=2, padding="same")(x)
        if stage:
            x = build.normalize(x, [1, 2, 3])
        x = layers.LeakyReLU(LEAK)(x)
    return keras.Model(inputs, build.score(layers.Flatten()(x), label, num_classes), name=name)


def mlp_critic(image_size: int = 64, base_filters: int = 256, hidden_layers: int = 3, norm: str = "none",
               spectral_norm: bool = False, clip_value: float = 0.0, num_classes: int = 0, name: str = "critic",
               **_) -> keras.Model:
    """image (+ label) -> score [N, 1] through `hidden_layers` dense layers (LeakyReLU), widest first."""
    build = _CriticLayers(norm, spectral_norm, clip_value)
    images, label, inputs = _image_and_label(image_size, num_classes)
    x = layers.Flatten()(images)
    if label is not None:
        x = layers.Concatenate()([x, build.embedding(num_classes, int(math.sqrt(x.shape[-1])))(label)])
    for i, width in enumerate(reversed(mlp_widths(base_filters, hidden_layers))):
        x = build.weighted(layers.Dense, width)(x)
        if i:
            x = build.normalize(x, -1)
        x = layers.LeakyReLU(LEAK)(x)
    return keras.Model(inputs, build.score(x, label, num_classes), name=name)
