"""`python -m trainer.models model-of MODEL_OR_CONFIG`: the model a `-m` argument names (for run_training.sh).
`python -m trainer.models data-path CONFIG`: the config's `data_path` (for `run_training.sh -m CONFIG` without -d).

Prints the model name: MODEL itself, the `"model"` of a JSON config file (`gan` for a gan-toolkit zoo config), or
the default when empty. Exit 2 with one line when the file is missing, is not JSON, or names no known model (or,
for data-path, when the config has no `data_path`). No TensorFlow.
"""
from __future__ import annotations

import argparse
import sys

from artifacts import console, storage
from trainer import models
from trainer.models import toolkit


def read_config(path: str) -> dict:
    """A JSON config file's values in genart's keys."""
    if not storage.exists(path):
        raise ValueError(f"config file not found: {path}")
    values = storage.read_json(path)
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a JSON object")
    return toolkit.genart_values(values, where=f"{path}: ")


def model_of(argument: str) -> str:
    if not argument:
        return models.DEFAULT_MODEL
    name = argument
    if argument.endswith(".json"):
        name = read_config(argument).get("model", models.DEFAULT_MODEL)
    models.registration(name)  # known?
    return name


def data_path_of(path: str) -> str:
    if not path.endswith(".json"):
        raise ValueError("-d DATA_DIR is required")
    data_path = read_config(path).get("data_path")
    if not data_path:
        raise ValueError(f"-d DATA_DIR is required: the config {path} names no data_path")
    return data_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.models", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("model-of", help="print the model MODEL_OR_CONFIG names").add_argument("argument")
    commands.add_parser("data-path", help="print the data_path a CONFIG names").add_argument("argument")
    args = parser.parse_args(argv)
    answer = model_of if args.command == "model-of" else data_path_of
    return console.run(lambda: print(answer(args.argument)), ValueError, OSError)  # JSONDecodeError: ValueError


if __name__ == "__main__":
    sys.exit(main())
