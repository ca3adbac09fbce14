"""The one way images of any size, colour and value range become a feature net's input.

1. Scale to [0, 1]: `value_range` says what the numbers mean; by default uint8 is [0, 255], bool and floats
   are [0, 1] (a generator's tanh output passes value_range=(-1, 1)). Values outside are clipped.
2. Colour: alpha is dropped; to grey by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B, as PIL's "L" and
   tf.image.rgb_to_grayscale), or grey to RGB by repeating the channel.
3. Size: bilinear resize with antialiasing (tf.image.resize(..., antialias=True)) to the net's square size.
"""
from __future__ import annotations

import numpy as np

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def as_batch(images) -> np.ndarray:
    """(n, h, w) or (n, h, w, c) -> (n, h, w, c) with c in 1..4."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"images must be (n, h, w) or (n, h, w, 1|2|3|4), got shape {x.shape}")
    return x


def default_value_range(dtype) -> tuple[float, float]:
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 0.0, 255.0
    if dtype == np.bool_ or np.issubdtype(dtype, np.floating):
        return 0.0, 1.0
    raise ValueError(f"give value_range for images of dtype {dtype}")


def to_unit_float(images, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Step 1: (n, h, w, c) float32 in [0, 1]."""
    x = as_batch(images)
    lo, hi = value_range if value_range is not None else default_value_range(x.dtype)
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    return np.clip((x.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0)


def to_grey(x: np.ndarray) -> np.ndarray:
    """Step 2 for one-channel nets: (n, h, w, c) -> (n, h, w, 1)."""
    if x.shape[-1] <= 2:  # grey, or grey + alpha
        return x[..., :1]
    return (x[..., :3] @ LUMA_WEIGHTS)[..., None]


def to_rgb(x: np.ndarray) -> np.ndarray:
    """Step 2 for three-channel nets: (n, h, w, c) -> (n, h, w, 3)."""
    if x.shape[-1] <= 2:
        return np.repeat(x[..., :1], 3, axis=-1)
    return x[..., :3]


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Step 3: (n, h, w, c) -> (n, size, size, c), float32."""
    if x.shape[1:3] == (size, size):
        return x.astype(np.float32, copy=False)
    import tensorflow as tf  # only here: the rest of this module is NumPy

    return tf.image.resize(x, (size, size), method="bilinear", antialias=True).numpy()
