"""Generated image + label map pairs for SPADE tests: every class has its own true colour, so a model must learn
a colour-by-class mapping (the label colours differ from the image colours).

`write_pairs(root, n)` writes `ROOT/images/*.png`, `ROOT/labels/*.png` (colour label maps) and `ROOT/labels.json`;
layouts are random rectangles of the classes on a background class.
"""
from __future__ import annotations

import io
import json
import os

import numpy as np
from PIL import Image

CLASSES = [  # name, label colour, the true image colour of the class
    ("sky", (0, 0, 255), (235, 210, 60)),
    ("grass", (0, 200, 0), (40, 90, 210)),
    ("rock", (200, 0, 0), (200, 70, 170)),
]
LABEL_COLORS = np.asarray([c[1] for c in CLASSES], np.uint8)
TRUE_COLORS = np.asarray([c[2] for c in CLASSES], np.float64)
JITTER = 8  # per-pixel noise of the true colours


def layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """uint8 [size, size] class ids: background 0, two random rectangles of classes 1 and 2."""
    ids = np.zeros((size, size), np.uint8)
    for cls in (1, 2):
        h, w = rng.integers(size // 4, size // 2 + 1, 2)
        top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        ids[top:top + h, left:left + w] = cls
    return ids


def image_of(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.integers(-JITTER, JITTER + 1, (*ids.shape, 3))
    return np.clip(TRUE_COLORS[ids] + noise, 0, 255).astype(np.uint8)


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


def write_pairs(root: str, count: int, size: int = 16, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    for folder in ("images", "labels"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for i in range(count):
        ids = layout(rng, size)
        Image.fromarray(image_of(ids, rng)).save(os.path.join(root, "images", f"{i:03d}.png"))
        Image.fromarray(LABEL_COLORS[ids]).save(os.path.join(root, "labels", f"{i:03d}.png"))
    with open(os.path.join(root, "labels.json"), "w") as f:
        json.dump({"classes": [{"name": n, "color": list(c)} for n, c, _ in CLASSES]}, f)
    return root


def class_colour_error(images: np.ndarray, ids: np.ndarray) -> float:
    """Mean over classes of the distance between the class's mean generated colour and its true colour."""
    errors = [np.linalg.norm(images[ids == c].reshape(-1, 3).mean(0) - TRUE_COLORS[c])
              for c in range(len(CLASSES)) if (ids == c).any()]
    return float(np.mean(errors))
