"""The SPADE networks of Park et al. 2019 (GauGAN): SPADE normalisation, SPADE residual blocks, the generator fed
the downsampled label map (the paper's no-encoder variant, optional noise input) and the multi-scale PatchGAN
discriminator (one `spade_patch_discriminator` per scale) on image ⊕ one-hot labels, spectral norm throughout.

Label maps enter as one-hot float [N, H, W, classes]. The image output is tanh RGB, float32 whatever the compute
precision.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

LEAKY_SLOPE = 0.2
EPSILON = 1e-5
BN_MOMENTUM = 0.9        # PyTorch's momentum 0.1, the paper's code
MAX_UPSAMPLINGS = 5      # the paper's "normal": 256 px from 8 x 8
MIN_START_SIZE = 8
MAX_WIDTH_FACTOR = 16    # the paper's 16 * ngf at the start
MAX_DISCRIMINATOR_FILTERS = 512
NORMS = ("batch", "instance")


@keras.saving.register_keras_serializable(package="genart")
class SPADE(layers.Layer):
    """Spatially-adaptive normalisation: a parameter-free norm of x (batch or instance), then modulated per pixel,
    x̂ · (1 + γ) + β, with γ and β convolved from the label map resized (nearest) to x's size:
    shared = ReLU(conv3x3(labels)), γ = conv3x3(shared), β = conv3x3(shared). Inputs: [x, one-hot labels]."""

    def __init__(self, hidden: int = 128, norm: str = "batch", **kwargs):
        super().__init__(**kwargs)
        if norm not in NORMS:
            raise ValueError(f"unknown SPADE normalisation {norm!r}; known: {', '.join(NORMS)}")
        self.hidden, self.norm = int(hidden), norm

    def build(self, input_shapes):
        x_shape, labels_shape = input_shapes
        filters = int(x_shape[-1])
        self.batch_norm = (layers.BatchNormalization(center=False, scale=False, epsilon=EPSILON,
                                                     momentum=BN_MOMENTUM, name="norm")
                           if self.norm == "batch" else None)
        self.shared = layers.Conv2D(self.hidden, 3, padding="same", activation="relu", name="shared")
        self.gamma = layers.Conv2D(filters, 3, padding="same", name="gamma")
        self.beta = layers.Conv2D(filters, 3, padding="same", name="beta")
        if self.batch_norm is not None:
            self.batch_norm.build(x_shape)
        label_shape = (x_shape[0], x_shape[1], x_shape[2], labels_shape[-1])
        self.shared.build(label_shape)
        hidden_shape = (*label_shape[:3], self.hidden)
        self.gamma.build(hidden_shape)
        self.beta.build(hidden_shape)

    def modulation(self, labels, height: int, width: int):
        """(γ, β) of the label map at height x width."""
        resized = tf.image.resize(labels, [height, width], method="nearest")
        shared = self.shared(tf.cast(resized, self.compute_dtype))
        return self.gamma(shared), self.beta(shared)

    def normalize(self, x, training=None):
        if self.batch_norm is not None:
            return self.batch_norm(x, training=training)
        mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + EPSILON)

    def call(self, inputs, training=None):
        x, labels = inputs
        gamma, beta = self.modulation(labels, int(x.shape[1]), int(x.shape[2]))
        return self.normalize(x, training) * (1.0 + gamma) + beta

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "norm": self.norm}


def _conv(filters: int, kernel: int, spectral_norm: bool, name: str, strides: int = 1, use_bias: bool = True):
    conv = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=use_bias, name=name)
    return layers.SpectralNormalization(conv, name=f"{name}_sn") if spectral_norm else conv


def spade_resblock(x, labels, filters: int, hidden: int, norm: str, spectral_norm: bool, name: str):
    """The paper's SPADE ResBlk: two (SPADE, LeakyReLU, conv3x3) stages, a learned (SPADE, conv1x1) shortcut when
    the width changes."""
    middle = min(int(x.shape[-1]), filters)
    shortcut = x
    if int(x.shape[-1]) != filters:
        shortcut = SPADE(hidden, norm, name=f"{name}_spade_s")([x, labels])
        shortcut = _conv(filters, 1, spectral_norm, f"{name}_conv_s", use_bias=False)(shortcut)
    dx = layers.LeakyReLU(LEAKY_SLOPE)(SPADE(hidden, norm, name=f"{name}_spade_0")([x, labels]))
    dx = _conv(middle, 3, spectral_norm, f"{name}_conv_0")(dx)
    dx = layers.LeakyReLU(LEAKY_SLOPE)(SPADE(hidden, norm, name=f"{name}_spade_1")([dx, labels]))
    dx = _conv(filters, 3, spectral_norm, f"{name}_conv_1")(dx)
    return layers.Add(name=f"{name}_out")([shortcut, dx])


def upsamplings(image_size: int) -> int:
    """Doublings from the start size (8 x 8 where the image allows) to `image_size`: 5 at 256 px, as the paper."""
    return max(0, min(MAX_UPSAMPLINGS, int(math.log2(image_size)) - int(math.log2(MIN_START_SIZE))))


def spade_generator(image_size: int = 64, num_classes: int = 2, base_filters: int = 64, noise_dim: int = 0,
                    spade_filters: int = 128, norm: str = "batch", spectral_norm: bool = True,
                    name: str = "generator", **_) -> keras.Model:
    """[one-hot labels [N, S, S, classes] (, noise [N, noise_dim])] -> tanh RGB [N, S, S, 3] (float32)."""
    ups = upsamplings(image_size)
    start = image_size // 2 ** ups

    def width(i: int) -> int:
        return base_filters * min(MAX_WIDTH_FACTOR, 2 ** (ups - i))

    labels = keras.Input([image_size, image_size, num_classes], name="labels")
    inputs = [labels]
    x = layers.Resizing(start, start, interpolation="nearest", name="downsample")(labels)
    x = layers.Conv2D(width(0), 3, padding="same", name="head_conv")(x)
    if noise_dim:
        noise = keras.Input([noise_dim], name="noise")
        inputs.append(noise)
        projected = layers.Reshape([start, start, width(0)])(layers.Dense(start * start * width(0))(noise))
        x = layers.Add(name="head_noise")([x, projected])
    x = spade_resblock(x, labels, width(0), spade_filters, norm, spectral_norm, "head")
    for i in range(1, ups + 1):
        x = layers.UpSampling2D(name=f"up_{i}")(x)
        x = spade_resblock(x, labels, width(i), spade_filters, norm, spectral_norm, f"up_{i}")
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.Conv2D(3, 3, padding="same", name="to_rgb")(x)
    rgb = layers.Activation("tanh", dtype="float32", name="rgb")(x)
    return keras.Model(inputs if noise_dim else labels, rgb, name=name)


def spade_patch_discriminator(num_classes: int = 2, base_filters: int = 64, n_layers: int = 4,
                              spectral_norm: bool = True, name: str = "discriminator", **_) -> keras.Model:
    """pix2pixHD's / SPADE's N-layer PatchGAN on image ⊕ one-hot labels, any size: [image, labels] -> every
    layer's features, the last being the map of patch scores (float32)."""
    image = keras.Input([None, None, 3], name="image")
    labels = keras.Input([None, None, num_classes], name="labels")
    x = layers.Concatenate()([image, labels])
    x = layers.LeakyReLU(LEAKY_SLOPE)(_conv(base_filters, 4, spectral_norm, "conv_0", strides=2)(x))
    features, filters = [x], base_filters
    for i in range(1, n_layers):
        filters = min(filters * 2, MAX_DISCRIMINATOR_FILTERS)
        x = _conv(filters, 4, spectral_norm, f"conv_{i}", strides=1 if i == n_layers - 1 else 2)(x)
        x = layers.GroupNormalization(groups=filters, center=False, scale=False, epsilon=EPSILON,
                                      name=f"instance_norm_{i}")(x)
        x = layers.LeakyReLU(LEAKY_SLOPE)(x)
        features.append(x)
    scores = _conv(1, 4, spectral_norm, "scores")(x)
    features.append(layers.Activation("linear", dtype="float32", name="patch_scores")(scores))
    return keras.Model([image, labels], features, name=name)


def downsample(images):
    """The next discriminator scale: 3x3 average pooling, stride 2 (padding not counted, as the paper's)."""
    return tf.nn.avg_pool2d(images, 3, 2, "SAME")
