"""What the batch command line and the pipeline both know, in a module light enough for `--help` (no Beam, no
TensorFlow): the input data formats `beam_io` reads and the default number of instances per graph call."""
from __future__ import annotations

TEXT, TF_RECORD, TF_RECORD_GZIP = "TEXT", "TF_RECORD", "TF_RECORD_GZIP"
DATA_FORMATS = (TEXT, TF_RECORD, TF_RECORD_GZIP)
DEFAULT_BATCH_SIZE = 64


def data_format(text: str) -> str:
    """A `--data-format` value -> its canonical name (case and '-' ignored; JSON means TEXT); ValueError if unknown."""
    name = text.strip().upper().replace("-", "_")
    name = {"JSON": TEXT}.get(name, name)
    if name not in DATA_FORMATS:
        raise ValueError(f"unknown data format {text!r} (choose {', '.join(DATA_FORMATS)})")
    return name
