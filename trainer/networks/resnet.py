"""The CycleGAN networks of Zhu et al. 2017: the ResNet generator and the 70×70 PatchGAN discriminator.

Owns the builders `resnet_generator` and `patchgan_discriminator` (plain functional Keras models whose
width is set by `base_filters`) and the two small layers they need: `ReflectionPadding2D` and instance
normalisation (one group per channel; the fused kernel of `fused_norm.py` under the fused step). The
reflection-padded convs go through `valid_conv2d`, which runs the RGB-side ones on 2×2 blocks on CPUs
(`space_to_depth_conv.py`). Weights start from N(0, 0.02) as in the reference implementation.
"""
from __future__ import annotations

import keras
from keras import layers

from trainer.networks.fused_norm import instance_normalization
from trainer.networks.space_to_depth_conv import valid_conv2d

LEAKY_SLOPE = 0.2
MAX_DISCRIMINATOR_STRIDED = 3    # C64-C128-C256 strided + C512: the 70×70 receptive field
MIN_PATCH_MAP = 2                # tiny images: fewer strided layers, so the map stays at least 2×2


def _init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


@keras.saving.register_keras_serializable(package="genart")
class ReflectionPadding2D(layers.Layer):
    """Pads height and width by `padding` pixels on every side, mirroring the edge (TF's `REFLECT` mode)."""

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return keras.ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = lambda size: None if size is None else size + 2 * self.padding  # noqa: E731
        return (n, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def instance_norm(name: str | None = None) -> layers.Layer:
    """Instance normalisation: per image and channel, over height and width (with a learned scale and offset)."""
    return instance_normalization(epsilon=1e-5, name=name)


def _conv_norm_relu(x, filters: int, kernel: int, stride: int = 1, reflect: int = 0, transpose: bool = False):
    """[reflection pad] → conv (or stride-2 transposed conv) → instance norm → ReLU."""
    if reflect:
        x = valid_conv2d(ReflectionPadding2D(reflect)(x), filters, kernel, use_bias=False, kernel_initializer=_init())
    else:
        conv = layers.Conv2DTranspose if transpose else layers.Conv2D
        x = conv(filters, kernel, strides=stride, padding="same", use_bias=False, kernel_initializer=_init())(x)
    return layers.ReLU()(instance_norm()(x))


def _residual_block(x, filters: int):
    """R-k: two reflection-padded 3×3 convs with instance norm, added to the input."""
    y = _conv_norm_relu(x, filters, 3, reflect=1)
    y = valid_conv2d(ReflectionPadding2D(1)(y), filters, 3, use_bias=False, kernel_initializer=_init())
    y = instance_norm()(y)
    return layers.Add()([x, y])


def resnet_generator(image_size: int | None = None, base_filters: int = 64, n_blocks: int = 9,
                     name: str = "resnet_generator") -> keras.Model:
    """c7s1-F, d2F, d4F, `n_blocks` × R4F, u2F, uF, c7s1-3 (tanh): [N, S, S, 3] in [-1, 1] → same shape.

    Fully convolutional; `image_size` only fixes the input shape (None: any size divisible by 4).
    """
    f = int(base_filters)
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = _conv_norm_relu(inputs, f, 7, reflect=3)
    x = _conv_norm_relu(x, 2 * f, 3, stride=2)
    x = _conv_norm_relu(x, 4 * f, 3, stride=2)
    for _ in range(int(n_blocks)):
        x = _residual_block(x, 4 * f)
    x = _conv_norm_relu(x, 2 * f, 3, stride=2, transpose=True)
    x = _conv_norm_relu(x, f, 3, stride=2, transpose=True)
    x = valid_conv2d(ReflectionPadding2D(3)(x), 3, 7, kernel_initializer=_init())
    outputs = layers.Activation("tanh", dtype="float32", name="translated")(x)
    return keras.Model(inputs, outputs, name=name)


def discriminator_strided_layers(image_size: int | None) -> int:
    """How many stride-2 convs the PatchGAN uses: 3 (the 70×70 design), fewer when the image is so small that
    the patch map (image_size / 2**n - 2) would be under `MIN_PATCH_MAP` pixels."""
    if image_size is None:
        return MAX_DISCRIMINATOR_STRIDED
    n = MAX_DISCRIMINATOR_STRIDED
    while n > 1 and image_size // 2 ** n - 2 < MIN_PATCH_MAP:
        n -= 1
    return n


def _patch_conv(x, filters: int, stride: int, norm: bool):
    """C-k: 4×4 conv (zero padding 1, as in the reference), [instance norm], LeakyReLU 0.2."""
    x = layers.ZeroPadding2D(1)(x)
    x = layers.Conv2D(filters, 4, strides=stride, padding="valid", use_bias=not norm, kernel_initializer=_init())(x)
    if norm:
        x = instance_norm()(x)
    return layers.LeakyReLU(LEAKY_SLOPE)(x)


def patchgan_discriminator(image_size: int | None = None, base_filters: int = 64,
                           name: str = "patchgan_discriminator") -> keras.Model:
    """C64-C128-C256-C512 → 1-channel map of real/fake scores (LSGAN: no sigmoid), one per 70×70 patch.

    [N, S, S, 3] → [N, S/8 - 2, S/8 - 2, 1] at S ≥ 32 (30×30 at 256 px); smaller images drop strided layers
    (see `discriminator_strided_layers`) so the map stays at least 2×2.
    """
    f = int(base_filters)
    strided = discriminator_strided_layers(image_size)
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = _patch_conv(inputs, f, stride=2, norm=False)
    for i in range(1, strided):
        x = _patch_conv(x, f * min(2 ** i, 8), stride=2, norm=True)
    x = _patch_conv(x, f * min(2 ** strided, 8), stride=1, norm=True)
    x = layers.ZeroPadding2D(1)(x)
    outputs = layers.Conv2D(1, 4, padding="valid", kernel_initializer=_init(), dtype="float32", name="patch_scores")(x)
    return keras.Model(inputs, outputs, name=name)
