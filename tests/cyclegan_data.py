"""Generated unpaired data for CycleGAN tests: domain B is a fixed colour remap (the negative) of domain A.

Domain A: yellow rectangles and a disk on a dark blue background (each object's colour slightly jittered).
Domain B: the colour negatives (255 - x) of *other* A-style images (light background, blue shapes), so the two
folders hold no pairs. The two domains share no colour, so the negative is also consistent with the identity
loss (it is never asked to change a B image). A network must follow each image's shapes to score well: painting
the mean B colour everywhere scores about 0.7 x the error of an untrained generator, the mapping itself ~0.

Written as `ROOT/A/` and `ROOT/B/` (train + val TFRecords, `manifest.json`, center-cropped at `image_size`), the
layout `python -m preprocess` produces for `trainA/ trainB/ testA/ testB/`.
"""
from __future__ import annotations

import json
import os

import numpy as np

BACKGROUND_A = (0.1, 0.15, 0.45)  # dark blue
SHAPE_A = (0.95, 0.8, 0.2)        # yellow
JITTER = 0.05                     # per-object colour noise


def remap_a_to_b(images: np.ndarray) -> np.ndarray:
    """The ground-truth A → B mapping of uint8 images: the colour negative."""
    return 255 - np.asarray(images, np.uint8)


def _colour(base, rng: np.random.RandomState) -> np.ndarray:
    return np.clip(np.asarray(base) + rng.uniform(-JITTER, JITTER, size=3), 0.0, 1.0)


def domain_a_images(count: int, image_size: int, rng: np.random.RandomState) -> np.ndarray:
    """uint8 [count, S, S, 3]: yellow rectangles and a disk, at random places and sizes, on dark blue."""
    s = image_size
    yy, xx = np.mgrid[0:s, 0:s]
    out = np.empty([count, s, s, 3], np.float64)
    for i in range(count):
        image = np.broadcast_to(_colour(BACKGROUND_A, rng), [s, s, 3]).copy()
        for _ in range(2):
            top, left = rng.randint(0, s // 2, size=2)
            height, width = rng.randint(s // 6, s // 2, size=2)
            image[top:top + height, left:left + width] = _colour(SHAPE_A, rng)
        cy, cx, radius = rng.randint(s // 4, 3 * s // 4), rng.randint(s // 4, 3 * s // 4), rng.randint(s // 8, s // 4)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = _colour(SHAPE_A, rng)
        out[i] = image
    return np.round(out * 255).astype(np.uint8)


def _write_domain(domain_dir: str, splits: dict[str, np.ndarray], image_size: int) -> None:
    import tensorflow as tf  # here, so that importing this helper stays cheap

    from artifacts.dataset import MANIFEST, shard_name
    from preprocess.records import load_size_for, make_example

    os.makedirs(domain_dir, exist_ok=True)
    for split, images in splits.items():
        with tf.io.TFRecordWriter(os.path.join(domain_dir, shard_name(split, 0, 1))) as writer:
            for index, image in enumerate(images):
                png = tf.io.encode_png(image).numpy()
                writer.write(make_example(png, image_size, image_size, f"{split}/{index:04d}.png"))
    manifest = {"version": 1, "image_size": image_size, "load_size": load_size_for(image_size),
                "center_crop": True, "counts": {split: len(images) for split, images in splits.items()},
                "source": "tests/cyclegan_data.py", "skipped": []}
    with open(os.path.join(domain_dir, MANIFEST), "w") as f:
        json.dump(manifest, f)


def write_unpaired_data(root: str, image_size: int = 32, train: int = 64, val: int = 8, seed: int = 0) -> dict:
    """Write `root/A` and `root/B`; return the A val images (uint8) and their true B counterparts."""
    rng = np.random.RandomState(seed)
    a_train, a_val = domain_a_images(train, image_size, rng), domain_a_images(val, image_size, rng)
    b_source = domain_a_images(train + val, image_size, rng)  # unpaired: B comes from other A-style images
    b_images = remap_a_to_b(b_source)
    _write_domain(os.path.join(root, "A"), {"train": a_train, "val": a_val}, image_size)
    _write_domain(os.path.join(root, "B"), {"train": b_images[:train], "val": b_images[train:]}, image_size)
    return {"a_val": a_val, "a_val_mapped": remap_a_to_b(a_val)}
