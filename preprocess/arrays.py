"""NumPy image arrays as training data (INTERFACE.md section 8): `.npy` / `.npz` -> TFRecords + manifest.json.

Images are (N, H, W[, C]) with C in 1, 3 or 4 (alpha dropped), uint8 or float in [0, 1] or [-1, 1]; in an `.npz`
the images are the array `images`, else the only array other than `labels`; `labels` (N,) are optional class ids
(classes `"0"` ... `"K-1"` in the manifest). Each image is stored center-cropped and resized to the image size
with the shared pixel function (`preprocess.records.center_crop_resize`). Pickles (`.p`, `.pkl`, gan-toolkit's own
format) can run code when loaded: refused unless `allow_pickle`. The checks are TensorFlow-free; `run` is not.
"""
from __future__ import annotations

import dataclasses
import io
import os
import pickle

import numpy as np

from artifacts import storage
from preprocess.paths import PreprocessError

ARRAY_SUFFIXES = (".npy", ".npz")
PICKLE_SUFFIXES = (".p", ".pkl", ".pickle")
CONVERT_HINT = ("convert it once, in Python: `import pickle, numpy as np; data = pickle.load(open(PATH, 'rb')); "
                "np.savez(OUT.npz, images=IMAGES, labels=LABELS)` (labels optional), and train on the .npz")


def is_array_file(path: str) -> bool:
    return path.lower().endswith(ARRAY_SUFFIXES + PICKLE_SUFFIXES)


def check_source(path: str, allow_pickle: bool) -> None:
    """Refuse a pickle unless allowed (saying how to convert it), and a missing array file."""
    if path.lower().endswith(PICKLE_SUFFIXES) and not allow_pickle:
        raise PreprocessError(f"{path} is a pickle, which can run code when loaded: {CONVERT_HINT}; or pass "
                              "--allow-pickle if you trust the file")
    if is_array_file(path) and not storage.exists(path):
        raise PreprocessError(f"data file not found: {path}")


def _pick(arrays: dict, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    labels = arrays.get("labels")
    if "images" in arrays:
        return np.asarray(arrays["images"]), labels
    others = [name for name in arrays if name != "labels"]
    if len(others) != 1:
        raise PreprocessError(f"{where}: cannot tell which array holds the images ({', '.join(others) or 'none'}); "
                              "name it `images`")
    return np.asarray(arrays[others[0]]), labels


def load(path: str, allow_pickle: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels or None) as stored in the file."""
    check_source(path, allow_pickle)
    data = storage.read_bytes(path)
    lower = path.lower()
    if lower.endswith(PICKLE_SUFFIXES):
        loaded = pickle.loads(data)  # allowed explicitly (--allow-pickle)
        if isinstance(loaded, (tuple, list)) and len(loaded) == 2:
            loaded = {"images": loaded[0], "labels": loaded[1]}
        return _pick(loaded, path) if isinstance(loaded, dict) else (np.asarray(loaded), None)
    if lower.endswith(".npz"):
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return _pick({name: archive[name] for name in archive.files}, path)
    return np.load(io.BytesIO(data), allow_pickle=False), None


def to_uint8_rgb(images: np.ndarray, where: str) -> np.ndarray:
    """(N, H, W[, C]) uint8 or float [0, 1] / [-1, 1] -> uint8 (N, H, W, 3)."""
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or not len(images):
        raise PreprocessError(f"{where}: images must be (N, H, W[, C]) with C 1, 3 or 4, got shape {images.shape}")
    images = images[..., :3] if images.shape[-1] == 4 else np.repeat(images, 3, -1) if images.shape[-1] == 1 \
        else images
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise PreprocessError(f"{where}: images must be uint8 or float, got {images.dtype}")
    low, high = float(images.min()), float(images.max())
    if low < -1.0 - 1e-6 or high > 1.0 + 1e-6:
        raise PreprocessError(f"{where}: float images must lie in [0, 1] or [-1, 1], found [{low:g}, {high:g}]")
    scaled = (images + 1.0) * 127.5 if low < 0 else images * 255.0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def check_labels(labels: np.ndarray | None, count: int, where: str) -> list[str] | None:
    """The class names of `labels` ("0" ... "K-1"), or None without labels."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise PreprocessError(f"{where}: labels must be {count} non-negative integer class ids, got "
                              f"{labels.dtype} {labels.shape}")
    return [str(k) for k in range(int(labels.max()) + 1)]


def run(path: str, output_dir: str, options, allow_pickle: bool = False):
    """Write the array file `path` as a center-cropped dataset in `output_dir` (a `pipeline.Summary`)."""
    import tensorflow as tf

    from artifacts import dataset as layout
    from preprocess import pipeline, records

    images, labels = load(path, allow_pickle)
    images = to_uint8_rgb(np.asarray(images), path)
    classes = check_labels(labels, len(images), path)
    names = [f"{index:07d}" for index in range(len(images))]
    train, val = pipeline.split_paths(names, options.val_fraction, options.seed)
    data = pipeline.Dataset("", os.path.basename(path), {"train": train, "val": val}, classes=classes)
    staging = pipeline.staging_dir_for(output_dir)
    try:
        for split, chosen in data.splits.items():
            shards = pipeline.ShardSet(staging, split, pipeline.shard_count(len(chosen), options))
            try:
                for name in chosen:
                    index = int(name)
                    image = records.center_crop_resize(tf.constant(images[index]), options.image_size).numpy()
                    png = tf.io.encode_png(image).numpy()
                    label = None if classes is None else int(labels[index])
                    shards.write(records.make_example(png, options.image_size, options.image_size,
                                                      f"{os.path.basename(path)}[{index}]", label))
                    data.counts[split] += 1
            finally:
                shards.close()
        source = path if storage.is_gcs(path) else os.path.abspath(path)
        stored = dataclasses.replace(options, center_crop=True)  # stored at image_size: the trainer takes it whole
        pipeline.publish(staging, output_dir, {layout.MANIFEST: pipeline.manifest_for(data, source, stored)})
    finally:
        storage.rmtree(staging)
    return pipeline.Summary(output_dir, [data])
