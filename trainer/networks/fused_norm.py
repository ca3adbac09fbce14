"""Batch and instance normalisation with TensorFlow's fused kernel (`FusedBatchNormV3`, one op forward and one
backward instead of a dozen): the same maths as Keras's `BatchNormalization` / `GroupNormalization(groups=-1)`,
the same variables (so checkpoints are interchangeable), faster on CPU (see README "Speed").

The builders ask `fused()` which to use: True unless a model builds its networks inside `kernels(False)` (its
option `fused_step=False`, kept for comparison).
"""
from __future__ import annotations

import contextlib

import keras
import tensorflow as tf
from keras import layers


_fused = [True]


def fused() -> bool:
    return _fused[-1]


@contextlib.contextmanager
def kernels(use_fused: bool):
    """Networks built inside use the fused layers (True) or Keras's own (False)."""
    _fused.append(bool(use_fused))
    try:
        yield
    finally:
        _fused.pop()


def batch_normalization(**kwargs) -> layers.BatchNormalization:
    return (FusedBatchNormalization if fused() else layers.BatchNormalization)(**kwargs)


def instance_normalization(epsilon: float, name: str | None = None) -> layers.Layer:
    if fused():
        return FusedInstanceNormalization(epsilon=epsilon, name=name)
    return layers.GroupNormalization(groups=-1, epsilon=epsilon, name=name)


def _fused_normalize(x, scale, offset, epsilon: float):
    """(normalised x, batch mean, biased batch variance): per channel over every other axis of NHWC `x`."""
    y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=scale, offset=offset, mean=tf.zeros([0]), variance=tf.zeros([0]), epsilon=epsilon,
        is_training=True, data_format="NHWC")
    count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
    return y, mean, variance * (count - 1.0) / tf.maximum(count, 1.0)  # the kernel returns the unbiased variance


@keras.saving.register_keras_serializable(package="genart")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras BatchNormalization (last axis, no renorm, no mask) whose training mode runs the fused kernel."""

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or self.synchronized or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)  # as Keras does: statistics in float32 under mixed precision
        flat = len(x.shape) == 2
        if flat:
            x = x[:, None, None, :]
        y, mean, variance = _fused_normalize(x, self.gamma, self.beta, self.epsilon)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(y[:, 0, 0, :] if flat else y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="genart")
class FusedInstanceNormalization(layers.GroupNormalization):
    """Keras GroupNormalization(groups=-1) on NHWC images: each image's channels are folded into the channel axis
    ([N, H, W, C] -> [1, H, W, N*C]), so the fused kernel's batch statistics are the per-image ones."""

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        kwargs.pop("groups", None)
        super().__init__(groups=-1, epsilon=epsilon, **kwargs)

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        n, h, w, c = tf.unstack(tf.shape(x))
        folded = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, n * c])
        y, _, _ = _fused_normalize(folded, tf.tile(self.gamma, [n]), tf.tile(self.beta, [n]), self.epsilon)
        y = tf.transpose(tf.reshape(y, [h, w, n, c]), [2, 0, 1, 3])
        return tf.cast(tf.ensure_shape(y, inputs.shape), self.compute_dtype)
