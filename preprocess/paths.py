"""The input and output dirs of a preprocessing run, checked before TensorFlow is imported (no TF here), so a
mistyped path is one clear line at once and leaves nothing behind."""
from __future__ import annotations

from artifacts import dataset, storage


class PreprocessError(Exception):
    """A run that cannot produce a dataset (missing input, no usable image, unsafe output dir): exit 2."""


def check_input_dir(input_dir: str) -> None:
    if not storage.isdir(input_dir):
        raise PreprocessError(f"input dir not found: {input_dir}")


def check_output_dir(output_dir: str) -> None:
    """Refuse to replace a dir holding anything a previous run did not write (it would be deleted)."""
    if not storage.exists(output_dir):
        return
    if not storage.isdir(output_dir):
        raise PreprocessError(f"output dir {output_dir} exists and is not a directory")
    foreign = dataset.foreign_entries(output_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise PreprocessError(f"output dir {output_dir} holds files preprocess did not write ({shown}); "
                              "they would be replaced — use an empty or new directory")
