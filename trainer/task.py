"""`python -m trainer.task`: the trainer's command line (INTERFACE.md section 2, Cloud ML Engine convention).

Configuration, lowest to highest priority: the model's config class defaults < the job's saved `config.json` (so
re-running a job resumes it with the settings it was started with) < `--config FILE.json` (or `--model FILE.json`)
< flags. `center_crop` always comes from the data's manifest.json; so does `image_size` unless set explicitly.
The flags and `--help` are generated from the config dataclasses of every model (`trainer.config`).
`--help` and argument errors never import TensorFlow.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from artifacts import dataset, jobs, storage
from trainer import models
from trainer.config import TrainConfig, add_arguments, flag_name, without_legacy_extra

DESCRIPTION = """Train a genart model. Every option can also be set in a JSON config file (--config, or --model
FILE.json) under its name with underscores, e.g. {"model": "cyclegan", "pool_size": 10}; flags override it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer.task", description=DESCRIPTION)
    add_arguments(parser, models.config_classes())
    return parser


def resolve_config(argv: list[str]) -> TrainConfig:
    """The validated config of the job `argv` describes (see the module docstring for the precedence)."""
    flags = {k: v for k, v in vars(build_parser().parse_args(argv)).items() if v is not None}
    if flags.get("model", "").endswith(".json"):
        if "config" in flags:
            raise ValueError("give the JSON config once: --model FILE.json or --config FILE.json")
        flags["config"] = flags.pop("model")
    saved: dict = {}
    if "job_dir" in flags and storage.exists(jobs.config_path(flags["job_dir"])):
        saved = storage.read_json(jobs.config_path(flags["job_dir"]))
    given = without_legacy_extra(storage.read_json(flags["config"])) if "config" in flags else {}

    model = flags.get("model") or given.get("model") or saved.get("model") or models.DEFAULT_MODEL
    config_class = models.config_class(model)
    if "config" in flags:
        config_class.check_keys(given, where=f"{flags['config']}: ")
    config_class.check_keys(flags, spell=flag_name)
    values = {**config_class.saved_values(saved), **given}
    explicit = set(values) | set(flags)
    config = config_class.from_dict(values).merged(flags)

    for name in ("data_dir", "job_dir"):
        if not getattr(config, name):
            raise ValueError(f"{flag_name(name)} is required")
    manifest = dataset.find_manifest(config.data_dir)
    if manifest:
        config.center_crop = bool(manifest.get("center_crop", False))
        if "image_size" not in explicit:
            config.image_size = int(manifest["image_size"])
    return config.validate()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        config = resolve_config(argv)
        jobs.job_name(config.job_dir)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from trainer import loop  # TensorFlow from here on

    try:
        return loop.train(config, argv).exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except loop.NonFiniteLoss as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        traceback.print_exc()
        print(f"error: training failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
