"""Captions of an image folder for text -> image (INTERFACE.md section 12): which caption each image has, and
the caption-disjoint train/val split.

The split groups images by normalised caption (`preprocess.text`, the graph's own normaliser), so no caption is
in both splits, and holds out whole captions in a seeded order, preferring captions whose every word is still in
some train caption: the val prompts are then unseen combinations of seen words (seed 004's test prompts).
"""
from __future__ import annotations

import random

from artifacts import captions as layout
from artifacts import storage


def image_captions(root: str, found: list[str]) -> dict[str, str]:
    """{image: caption} for the images `found` in `root`: from its captions file, else (also for an image the
    file does not name) from the image's path."""
    path = layout.captions_file(root)
    given = layout.read_captions(path) if path else {}
    return {rel: given.get(rel, layout.caption_from_path(rel)) for rel in found}


def caption_disjoint_split(captions: dict[str, str], val_fraction: float, seed: int
                           ) -> tuple[list[str], list[str]]:
    """(train images, val images): whole normalised captions held out until about `val_fraction` of the images
    are in val (at least one caption, when there are two or more), words kept covered by train where possible."""
    from preprocess.text import normalize_all

    files = sorted(captions)
    keys = normalize_all([captions[rel] for rel in files])
    groups: dict[str, list[str]] = {}
    for rel, key in zip(files, keys):
        groups.setdefault(key, []).append(rel)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    target = round(len(files) * val_fraction)
    if val_fraction > 0 and len(order) >= 2:
        target = max(target, 1)
    word_uses: dict[str, int] = {}
    for key in order:
        for word in set(key.split()):
            word_uses[word] = word_uses.get(word, 0) + 1
    held: list[str] = []
    for strict in (True, False):  # first only captions whose words stay in train, then any
        for key in order:
            if sum(len(groups[k]) for k in held) >= target or len(held) >= len(order) - 1:
                break
            words = set(key.split())
            if key in held or (strict and any(word_uses[word] < 2 for word in words)):
                continue
            held.append(key)
            for word in words:
                word_uses[word] -= 1
    val = [rel for key in held for rel in groups[key]]
    train = [rel for key in order if key not in held for rel in groups[key]]
    rng = random.Random(seed)
    rng.shuffle(train)
    rng.shuffle(val)
    return train, val


def manifest_entry(captions: dict[str, str], splits: dict[str, list[str]]) -> dict:
    """manifest.json's `captions`: the number of distinct normalised captions of each split, and the train
    captions themselves when there are at most CLOSED_SET_MAX (a closed set of classes)."""
    from preprocess.text import normalize_all

    distinct = {split: sorted(set(normalize_all([captions[rel] for rel in rels]))) for split, rels in splits.items()}
    entry: dict = {split: len(values) for split, values in distinct.items()}
    if len(distinct["train"]) <= layout.CLOSED_SET_MAX:
        entry[layout.CLOSED_SET] = distinct["train"]
    return entry


def caption_files_present(input_dir: str) -> list[str]:
    """The captions files of `input_dir` (names relative to it), to copy beside the images of a gs:// input."""
    return [name for name in layout.CAPTION_FILES if storage.exists(storage.join(input_dir, name))]
