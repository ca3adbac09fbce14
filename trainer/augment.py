"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the same random,
differentiable transforms applied to real and generated images before the discriminator, in both its and the
generator's updates, so a small data set is not memorised by the discriminator.

Policies as the paper's (`trainer.choices.AUGMENTATIONS`): `color` (brightness ±0.5, saturation ×[0, 2), contrast
×[0.5, 1.5)), `translation` (up to 1/8 of the size, zero padded), `cutout` (a zeroed square of half the size).
Images are float [N, H, W, C] in [-1, 1]; randomness is stateless (`seed`, an int [2]), so a resumed run draws the
same transforms. One difference from the paper's code: `color` clips its result to [-1, 1], the range of real and
generated images, so an augmented image is always a valid image.
"""
from __future__ import annotations

import tensorflow as tf

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def _uniform(shape, seed, minval=0.0, maxval=1.0, dtype=tf.float32):
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval, dtype=dtype)


def color(x, seed):
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    per_image = tf.stack([tf.shape(x)[0], 1, 1, 1])
    x = x + (_uniform(per_image, seeds[0]) - 0.5)
    channel_mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - channel_mean) * (_uniform(per_image, seeds[1]) * 2.0) + channel_mean
    image_mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - image_mean) * (_uniform(per_image, seeds[2]) + 0.5) + image_mean
    return tf.clip_by_value(x, -1.0, 1.0)


def _shift(x, axis: int, shift, size: int):
    """Each image moved by `shift` [N] pixels along `axis` (1 or 2), zeros coming in."""
    padding = [[0, 0]] * 4
    padding[axis] = [1, 1]
    index = tf.clip_by_value(tf.range(size)[None, :] + shift[:, None] + 1, 0, size + 1)
    return tf.gather(tf.pad(x, padding), index, axis=axis, batch_dims=1)


def _batch_height_width_and_seeds(x, seed):
    """(batch, height, width, a seed for rows, a seed for columns) of an image batch [N, H, W, C]."""
    seed_y, seed_x = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    return tf.shape(x)[0], int(x.shape[1]), int(x.shape[2]), seed_y, seed_x


def translation(x, seed):
    batch, height, width, seed_y, seed_x = _batch_height_width_and_seeds(x, seed)
    max_y, max_x = int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)
    shift_y = _uniform([batch], seed_y, -max_y, max_y + 1, tf.int32)
    shift_x = _uniform([batch], seed_x, -max_x, max_x + 1, tf.int32)
    return _shift(_shift(x, 1, shift_y, height), 2, shift_x, width)


def cutout(x, seed):
    batch, height, width, seed_y, seed_x = _batch_height_width_and_seeds(x, seed)
    size_y, size_x = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
    top = _uniform([batch, 1], seed_y, 0, height + (1 - size_y % 2), tf.int32) - size_y // 2
    left = _uniform([batch, 1], seed_x, 0, width + (1 - size_x % 2), tf.int32) - size_x // 2
    rows = tf.range(height)[None, :]
    columns = tf.range(width)[None, :]
    in_rows = tf.cast((rows >= top) & (rows < top + size_y), x.dtype)         # [N, H]
    in_columns = tf.cast((columns >= left) & (columns < left + size_x), x.dtype)  # [N, W]
    mask = 1.0 - in_rows[:, :, None] * in_columns[:, None, :]
    return x * mask[:, :, :, None]


AUGMENT_FNS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x, policy: tuple[str, ...], seed):
    """`x` through each transform of `policy` in order (the identity for an empty policy)."""
    if not policy:
        return x
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, len(policy)))
    for name, op_seed in zip(policy, seeds):
        x = AUGMENT_FNS[name](x, op_seed)
    return x
