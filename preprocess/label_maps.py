"""Label maps in TensorFlow (INTERFACE.md section 11): stored beside their images, cropped identically.

- `PairEncoder`: an RGB image + its class-id map (same size) -> the PNGs a record stores, through the shared
  crop functions of `preprocess.records` (the image antialiased, the map nearest-neighbour: never interpolated);
- `training_pair`: a stored pair as the trainer sees it, one shared random crop + flip (or the center crop);
- `decode_label_maps`: the serving graph's input, a PNG per instance (colour per class, or grey = class id) ->
  class ids; unknown colours (anti-aliased strokes) map to the nearest class colour.
"""
from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from preprocess.records import (center_crop_resize, decode_and_preprocess, load_size_for, resize_shorter_side,
                                to_float)

PNG_COMPRESSION = 1


class PairEncoder:
    """(RGB uint8 [H, W, 3], class ids uint8 [H, W]) -> (image PNG, index PNG, height, width) as records store them."""

    def __init__(self, image_size: int, center_crop: bool):
        if center_crop:
            def resize(image, nearest):
                return center_crop_resize(image, image_size, nearest)
        else:
            def resize(image, nearest):
                return resize_shorter_side(image, load_size_for(image_size), nearest)

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([None, None], tf.uint8)],
                     autograph=False)
        def encode(image, ids):
            with tf.device("/CPU:0"):
                stored, stored_ids = resize(image, False), resize(ids[:, :, None], True)
                return (tf.io.encode_png(stored, compression=PNG_COMPRESSION),
                        tf.io.encode_png(stored_ids, compression=PNG_COMPRESSION), tf.shape(stored))

        self._encode = encode

    def __call__(self, rgb: np.ndarray, ids: np.ndarray) -> tuple[bytes, bytes, int, int]:
        png, ids_png, shape = self._encode(rgb, ids)
        height, width, _ = shape.numpy().tolist()
        return png.numpy(), ids_png.numpy(), height, width


def training_pair(encoded: tf.Tensor, label_png: tf.Tensor, image_size: int, whole: bool):
    """A stored (image PNG, index PNG) -> (float [S, S, 3] in [-1, 1], int32 [S, S] class ids).

    `whole`: the center crop (the image through the shared `decode_and_preprocess`); else one random crop and one
    random flip applied to the image and its map stacked together, so they cannot come apart.
    """
    ids = tf.io.decode_png(label_png, channels=1)
    if whole:
        image = decode_and_preprocess(encoded, image_size)
        return image, tf.cast(center_crop_resize(ids, image_size, nearest=True)[:, :, 0], tf.int32)
    image = tf.io.decode_png(encoded, channels=3)
    too_small = tf.minimum(tf.shape(image)[0], tf.shape(image)[1]) < image_size
    load_size = load_size_for(image_size)
    image, ids = tf.cond(too_small,
                         lambda: (resize_shorter_side(image, load_size), resize_shorter_side(ids, load_size, True)),
                         lambda: (image, ids))
    stacked = tf.concat([image, ids], axis=-1)
    crop = tf.image.random_flip_left_right(tf.image.random_crop(stacked, [image_size, image_size, 4]))
    return to_float(crop[:, :, :3]), tf.cast(crop[:, :, 3], tf.int32)


def nearest_class(rgb: tf.Tensor, colors: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, 3] -> int32 [H, W]: the index of the nearest of `colors` (float [C, 3]) for every pixel."""
    pixels = tf.cast(rgb, tf.float32)[:, :, None, :]
    return tf.argmin(tf.reduce_sum(tf.square(pixels - colors), axis=-1), axis=-1, output_type=tf.int32)


_PNG_COLOR_TYPE_OFFSET = 25  # the IHDR colour type byte: 0 grey, 4 grey + alpha, 2 RGB, 3 palette, 6 RGBA
_GREY_COLOR_TYPES = (b"\x00", b"\x04")


def decode_label_map(png: tf.Tensor, image_size: int, colors: list[list[int]]) -> tf.Tensor:
    """One label map PNG -> int32 [image_size, image_size] class ids: a grey PNG's value is the class id (ids past
    the last class clip to it); a colour PNG's pixels (transparency over white) map to the nearest class colour.
    The central square, nearest-neighbour resized first: no pixel is interpolated, and only image_size² are mapped."""
    rgba = center_crop_resize(tf.io.decode_png(png, channels=4), image_size, nearest=True)
    color_type = tf.strings.substr(png, _PNG_COLOR_TYPE_OFFSET, 1)
    is_grey = tf.reduce_any(tf.equal(color_type, tf.constant(_GREY_COLOR_TYPES)))

    def grey():
        return tf.minimum(tf.cast(rgba[:, :, 0], tf.int32), len(colors) - 1)

    def colour():
        alpha = tf.cast(rgba[:, :, 3:], tf.float32) / 255.0
        rgb = tf.cast(rgba[:, :, :3], tf.float32) * alpha + 255.0 * (1.0 - alpha)
        return nearest_class(rgb, tf.constant(colors, tf.float32))

    return tf.ensure_shape(tf.cond(is_grey, grey, colour), [image_size, image_size])


def decode_label_maps(pngs: tf.Tensor, image_size: int, colors: list[list[int]]) -> tf.Tensor:
    """string [N] of label map PNGs -> int32 [N, image_size, image_size] class ids."""
    return tf.map_fn(lambda one: decode_label_map(one, image_size, colors), pngs,
                     fn_output_signature=tf.TensorSpec([image_size, image_size], tf.int32))


@functools.lru_cache(maxsize=8)
def pair_encoder_for(image_size: int, center_crop: bool) -> PairEncoder:
    """One traced pair encoder per setting and process."""
    return PairEncoder(image_size, center_crop)
