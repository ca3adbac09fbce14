"""The preprocessed dataset dir (INTERFACE.md section 1): shard names, `manifest.json`, unpaired domains.

    DATA/train-SSSSS-of-NNNNN.tfrecord  DATA/val-…  DATA/manifest.json       (one dataset)
    DATA/A/…  DATA/B/…                                                         (unpaired: one dataset per domain)

`manifest.json` is written last, so its presence marks a complete dataset. The record features themselves are
TensorFlow's business and live in `preprocess.records`.
"""
from __future__ import annotations

import re

from artifacts import storage

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
SPLITS = ("train", "val")
DOMAINS = ("A", "B")  # the unpaired (CycleGAN) layout: DATA/A/, DATA/B/
SHARD_SUFFIX = ".tfrecord"


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def shard_pattern(split: str) -> str:
    """A glob (`*`) matching every shard of `split`."""
    return f"{split}-*-of-*{SHARD_SUFFIX}"


def split_files(data_dir: str, split: str) -> list[str]:
    """The shard files of one split (`train` or `val`), sorted."""
    return storage.glob(storage.join(data_dir, shard_pattern(split)))


def train_files(data_dir: str) -> list[str]:
    """The train split's shard files; FileNotFoundError saying what to run when there are none."""
    files = split_files(data_dir, SPLITS[0])
    if not files:
        raise FileNotFoundError(f"no {shard_pattern(SPLITS[0])} shards in {data_dir} "
                                "(run `python -m preprocess` first)")
    return files


def domain_dir(data_dir: str, domain: str) -> str:
    return storage.join(data_dir, domain) if domain else data_dir


def manifest_path(data_dir: str, domain: str = "") -> str:
    return storage.join(domain_dir(data_dir, domain), MANIFEST)


def relative_manifest_path(domain: str = "") -> str:
    """The manifest's path relative to the output dir (`manifest.json` or `A/manifest.json`)."""
    return f"{domain}/{MANIFEST}" if domain else MANIFEST


def read_manifest(data_dir: str, domain: str = "") -> dict:
    return storage.read_json(manifest_path(data_dir, domain))


def manifest_layouts(data_dir: str) -> tuple[list[str], list[str]]:
    """The manifest paths of the two layouts: ([DATA/manifest.json], [DATA/A/manifest.json, DATA/B/…])."""
    return [manifest_path(data_dir)], [manifest_path(data_dir, d) for d in DOMAINS]


def find_manifest(data_dir: str) -> dict | None:
    """The data's manifest (for unpaired data, the one of `A/`), or None when there is none yet."""
    for path in (manifest_path(data_dir), manifest_path(data_dir, DOMAINS[0])):
        if storage.exists(path):
            return storage.read_json(path)
    return None


def class_names(manifest: dict) -> list[str]:
    """The names of a labelled dataset's classes (`"classes": [{"name": ...}, ...]`; bare names accepted), in
    class id order; [] when the data has no labels."""
    return [item["name"] if isinstance(item, dict) else str(item) for item in manifest.get("classes") or []]


def class_colors(manifest: dict) -> list[list[int]]:
    """The colours of a dataset's label map classes (`"classes": [{"name", "color"}]`), in class id order; [] when
    its classes have none (no label maps)."""
    classes = [item for item in manifest.get("classes") or [] if isinstance(item, dict)]
    return [list(item["color"]) for item in classes] if classes and all("color" in c for c in classes) else []


def foreign_entries(output_dir: str) -> list[str]:
    """Entries of an existing output dir that a preprocessing run does not write (a run would replace them)."""
    if not storage.isdir(output_dir):
        return []
    written = re.compile(rf"(({'|'.join(SPLITS)})-\d{{5}}-of-\d{{5}}{re.escape(SHARD_SUFFIX)}|{re.escape(MANIFEST)}"
                         rf"|{'|'.join(DOMAINS)})")
    return [name for name in storage.listdir(output_dir) if not written.fullmatch(name)]


def new_manifest(*, image_size: int, load_size: int, center_crop: bool, counts: dict, source: str,
                 skipped: list, **extra) -> dict:
    """The manifest's schema: {"version", "image_size", "load_size", "center_crop", "counts", "source",
    "skipped", ...model-specific keys such as "classes"}."""
    return {"version": MANIFEST_VERSION, "image_size": image_size, "load_size": load_size,
            "center_crop": center_crop, "counts": counts, "source": source, "skipped": skipped, **extra}
