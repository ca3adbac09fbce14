"""Small generated training data for the trainer tests: images of coloured blobs, as an image folder or as
TFRecords + manifest.json written directly with `preprocess.records` (no preprocess CLI needed)."""
from __future__ import annotations

import io
import json
import os

import numpy as np
from PIL import Image


def blob_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: a plain background with one to three soft coloured ellipses."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.ones([size, size, 3], np.float32) * rng.uniform(0, 0.4, 3)
    for _ in range(rng.integers(1, 4)):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        ry, rx = rng.uniform(0.1, 0.3, 2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        image[inside] = rng.uniform(0.3, 1.0, 3)
    return (image * 255).round().astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def write_records(data_dir: str, n_train: int = 64, n_val: int = 16, image_size: int = 32,
                  train_shards: int = 1, seed: int = 0) -> str:
    """Center-crop TFRecords (images stored at `image_size`) + manifest.json, as `python -m preprocess` writes."""
    import tensorflow as tf

    from preprocess.records import make_example, shard_name

    rng = np.random.default_rng(seed)
    os.makedirs(data_dir, exist_ok=True)
    for split, count, shards in (("train", n_train, train_shards), ("val", n_val, 1)):
        for shard in range(shards):
            with tf.io.TFRecordWriter(os.path.join(data_dir, shard_name(split, shard, shards))) as writer:
                for i in range(shard, count, shards):
                    image = blob_image(rng, image_size)
                    writer.write(make_example(png_bytes(image), image_size, image_size, f"{split}_{i}.png"))
    manifest = {"version": 1, "image_size": image_size, "load_size": round(image_size * 1.125),
                "center_crop": True, "counts": {"train": n_train, "val": n_val}, "source": "generated",
                "skipped": []}
    with open(os.path.join(data_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return data_dir


def write_image_folder(folder: str, count: int = 24, size: int = 40, seed: int = 0) -> str:
    """An artist's folder: PNG and JPEG blob images, some not square."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        image = blob_image(rng, size)
        if i % 3 == 0:
            image = np.concatenate([image, image[:, : size // 2]], axis=1)  # landscape
        ext = "jpg" if i % 2 else "png"
        Image.fromarray(image).save(os.path.join(folder, f"blob_{i:03d}.{ext}"))
    return folder
