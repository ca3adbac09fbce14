"""`python -m trainer.models model-of MODEL_OR_CONFIG`: the model a `-m` argument names (for run_training.sh).

Prints the model name: MODEL itself, the `"model"` of a JSON config file, or the default when empty. Exit 2 with
one line when the file is missing, is not JSON, or names no known model. No TensorFlow.
"""
from __future__ import annotations

import argparse
import sys

from artifacts import console, storage
from trainer import models


def model_of(argument: str) -> str:
    if not argument:
        return models.DEFAULT_MODEL
    name = argument
    if argument.endswith(".json"):
        if not storage.exists(argument):
            raise ValueError(f"config file not found: {argument}")
        values = storage.read_json(argument)
        if not isinstance(values, dict):
            raise ValueError(f"config file {argument} must hold a JSON object")
        name = values.get("model", models.DEFAULT_MODEL)
    models.registration(name)  # known?
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.models", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("model-of", help="print the model MODEL_OR_CONFIG names").add_argument("argument")
    args = parser.parse_args(argv)
    try:
        print(model_of(args.argument))
    except (ValueError, OSError) as err:  # json.JSONDecodeError is a ValueError
        return console.usage_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
