"""Captioned image folders (INTERFACE.md section 12), TensorFlow-free: the captions files a user writes, the
caption made from a file's path when there is none, and the record feature that stores it.

    DIR/captions.csv    file,caption        (header row; `file` relative to DIR)
    DIR/captions.jsonl  {"file": ..., "caption": ...} per line
Without either, `red_circles/03.png` -> "red circles": the words of the folders and the stem, numbers dropped.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re

from artifacts import storage

CAPTIONS_CSV = "captions.csv"
CAPTIONS_JSONL = "captions.jsonl"
CAPTION_FILES = (CAPTIONS_CSV, CAPTIONS_JSONL)
CAPTION = "image/caption"  # bytes: the caption as written (normalised in the graph, `preprocess.text`)
MANIFEST_KEY = "captions"          # manifest.json {"captions": {"train": distinct captions, "val": ..., CLOSED_SET?}}
TEXT_VAL_FRACTION = 0.2            # seed 004's 80/20 split of captioned data
CLOSED_SET = "closed_set"          # manifest "captions": {"closed_set": [...]}: every train caption, normalised,
CLOSED_SET_MAX = 64                # when there are at most this many (text -> image adds TAC-GAN's class term)
_WORD_SEPARATORS = re.compile(r"[\s_\-.]+")


class CaptionsError(ValueError):
    """A captions file that cannot be read (its name and line in the message)."""


def captions_file(root: str) -> str | None:
    """The captions file of the image folder `root` (csv wins over jsonl), or None."""
    for name in CAPTION_FILES:
        if storage.exists(storage.join(root, name)):
            return storage.join(root, name)
    return None


def read_captions(path: str) -> dict[str, str]:
    """{file relative to the folder ('/'-separated): caption} of a captions.csv / captions.jsonl."""
    text = storage.read_bytes(path).decode("utf-8-sig")
    name = os.path.basename(path)
    out = {}
    if name == CAPTIONS_CSV:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"file", "caption"} <= set(reader.fieldnames):
            raise CaptionsError(f"{name}: the header row must name the columns file,caption; got {reader.fieldnames}")
        rows = [(reader.line_num, row) for row in reader]
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as err:
                    raise CaptionsError(f"{name} line {number}: not JSON ({err.msg})") from None
    for number, row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("file"), str) or not isinstance(row.get("caption"),
                                                                                                 str):
            raise CaptionsError(f"{name} line {number}: expected a file and a caption (strings), got {row!r}")
        out[row["file"].replace("\\", "/").removeprefix("./")] = row["caption"]
    return out


def caption_from_path(rel: str) -> str:
    """`red_circles/03.png` -> "red circles": the words of the folders and the file stem, numbers dropped."""
    parts = rel.replace("\\", "/").split("/")
    parts[-1] = os.path.splitext(parts[-1])[0]
    words = [word for part in parts for word in _WORD_SEPARATORS.split(part) if word and not word.isdigit()]
    return " ".join(words)


def closed_set(manifest: dict) -> list[str]:
    """The data's closed set of (normalised) train captions, or [] when it has more than CLOSED_SET_MAX."""
    return list((manifest.get(MANIFEST_KEY) or {}).get(CLOSED_SET) or [])
