"""What the batch command line and the pipeline both know, in a module light enough for `--help` (no Beam, no
TensorFlow): the input data formats `beam_io` reads, the default number of instances per graph call, and the
`--input-paths` rules (checked here before Beam starts, matched by Beam's own file systems in `beam_io`)."""
from __future__ import annotations

import os

from artifacts import storage

TEXT, TF_RECORD, TF_RECORD_GZIP = "TEXT", "TF_RECORD", "TF_RECORD_GZIP"
DATA_FORMATS = (TEXT, TF_RECORD, TF_RECORD_GZIP)
DEFAULT_BATCH_SIZE = 64


class InputError(Exception):
    """An `--input-paths` value that names no input file (exit 2)."""


def input_patterns(input_paths: str) -> list[str]:
    """Comma-separated paths/patterns -> the patterns; InputError when empty or a pattern names a directory."""
    patterns = [p.strip() for p in input_paths.split(",") if p.strip()]
    if not patterns:
        raise InputError("--input-paths is empty")
    for pattern in patterns:
        if pattern.endswith("/") or (not storage.is_gcs(pattern) and os.path.isdir(pattern)):
            raise InputError(f"input path {pattern!r} is a directory: name its files, e.g. "
                             f"'{pattern.rstrip('/')}/*'")
    return patterns


def check_input_paths(input_paths: str) -> None:
    """InputError unless every pattern matches at least one file (before Beam or TensorFlow is imported)."""
    for pattern in input_patterns(input_paths):
        if not storage.glob(pattern):
            raise InputError(f"no input file matches {pattern!r}")


def data_format(text: str) -> str:
    """A `--data-format` value -> its canonical name (case and '-' ignored; JSON means TEXT); ValueError if unknown."""
    name = text.strip().upper().replace("-", "_")
    name = {"JSON": TEXT}.get(name, name)
    if name not in DATA_FORMATS:
        raise ValueError(f"unknown data format {text!r} (choose {', '.join(DATA_FORMATS)})")
    return name
