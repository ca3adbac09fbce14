"""`python -m trainer.task`: the trainer's command line (INTERFACE.md section 2, Cloud ML Engine convention).

Configuration, lowest to highest priority: the model's config class defaults < the job's saved `config.json` (so
re-running a job resumes it with the settings it was started with) < `--config FILE.json` (or `--model FILE.json`;
IBM gan-toolkit's keys are read as they are, `trainer.models.toolkit`) < flags. `center_crop` always comes from the data's manifest.json; so does `image_size` unless set explicitly.
The flags and `--help` are generated from the config dataclasses of every model (`trainer.config`).
`--help` and argument errors never import TensorFlow.
"""
from __future__ import annotations

import argparse
import sys
import traceback

from artifacts import captions, console, dataset, jobs, storage
from trainer import models, sizing
from trainer.models import toolkit
from trainer.config import TrainConfig, add_arguments, flag_name, without_legacy_extra

DESCRIPTION = """Train a genart model. Every option can also be set in a JSON config file (--config, or --model
FILE.json) under its name with underscores, e.g. {"model": "cyclegan", "pool_size": 10}; flags override it.
VAE-GAN sizes: when no option sets --image-size, --base-filters or --batch-size, they are picked from the device
and the data and printed at start (saved in config.json as "sizing"): a GPU gets the INTERFACE defaults (64 px,
base filters 64, batch 64); a CPU a model that shows progress within minutes (2-4 cores: 32 px, 16, 16)."""
EXAMPLES = """Examples:
  python -m trainer.task --data-dir workspace/jobs/faces/data --job-dir workspace/jobs/faces --max-steps 2000
  python -m trainer.task --data-dir gs://my-bucket/data --job-dir gs://my-bucket/jobs/anime --model cyclegan
  python -m trainer.task --config examples/configs/dcgan_wgan_gp.json --data-dir DATA --job-dir workspace/jobs/zoo"""


def build_parser() -> argparse.ArgumentParser:
    parser = console.ArgumentParser(prog="python -m trainer.task", description=DESCRIPTION, epilog=EXAMPLES,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, models.config_classes())
    parser.add_argument(console.VERBOSE_FLAG, action="store_true", default=None, help=console.VERBOSE_HELP)
    return parser


def check_data_dir(data_dir: str) -> None:
    """Refuse a data dir that holds no preprocessed data (before TensorFlow, before any job record)."""
    if dataset.find_manifest(data_dir) is None:
        what = "does not exist" if not storage.exists(data_dir) else "holds no preprocessed data (no manifest.json)"
        raise ValueError(f"--data-dir {data_dir} {what}: make it with python -m preprocess --input-dir IMAGES "
                         f"--output-dir {data_dir}, or train on an image folder with ./run_training.sh -d IMAGES")


def resolve_config(argv: list[str], source: str | None = None, device: sizing.Device | None = None) -> TrainConfig:
    """The validated config of the job `argv` describes (see the module docstring for the precedence). Sizes no
    option set are picked by `trainer.sizing` from `device` (default: this machine) and the data (its manifest,
    else the image folder `source` it will be preprocessed from)."""
    flags = {k: v for k, v in vars(build_parser().parse_args(argv)).items() if v is not None}
    flags.pop("verbose", None)
    if flags.get("model", "").endswith(".json"):
        if "config" in flags:
            raise ValueError("give the JSON config once: --model FILE.json or --config FILE.json")
        flags["config"] = flags.pop("model")
    saved: dict = {}
    if "job_dir" in flags and storage.exists(jobs.config_path(flags["job_dir"])):
        saved = storage.read_json(jobs.config_path(flags["job_dir"]))
    given = {}
    if "config" in flags:
        given = toolkit.genart_values(without_legacy_extra(storage.read_json(flags["config"])),
                                      where=f"{flags['config']}: ")

    model = flags.get("model") or given.get("model") or saved.get("model") or models.DEFAULT_MODEL
    config_class = models.config_class(model)
    if "config" in flags:
        config_class.check_keys(given, where=f"{flags['config']}: ")
    config_class.check_keys(flags, spell=flag_name)
    values = {**config_class.saved_values(saved), **given}
    explicit = set(values) | set(flags)
    config = config_class.from_dict(values).merged(flags)

    data_path = getattr(config, "data_path", "")
    if not config.data_dir and data_path and dataset.find_manifest(data_path):  # preprocessed data: train on it
        config.data_dir = data_path
    for name in ("data_dir", "job_dir"):
        if not getattr(config, name):
            raise ValueError(f"{flag_name(name)} is required")
    manifest = dataset.find_manifest(config.data_dir)
    if manifest:
        config.center_crop = bool(manifest.get("center_crop", False))
        if "image_size" not in explicit:
            config.image_size = int(manifest["image_size"])
        if "classes" in config.keys():  # a class-conditional model's classes are the data's
            config.classes = dataset.class_names(manifest)
        if "caption_classes" in config.keys():  # text -> image: the data's closed set of captions, if any
            config.caption_classes = captions.closed_set(manifest)
        if "class_colors" in config.keys():  # a label map model's class colours are the data's
            config.class_colors = dataset.class_colors(manifest)
        if getattr(config, "epochs", None) and "max_steps" not in explicit:  # gan-toolkit's epochs
            config.max_steps = config.steps_for_epochs(int(manifest.get("counts", {}).get("train", 0)))
    sizing.apply(config, explicit, device or sizing.Device.local(), sizing.Data.of(manifest, source))
    return config.validate()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        config = resolve_config(argv)
        jobs.job_name(config.job_dir)
        check_data_dir(config.data_dir)
    except (ValueError, OSError) as err:
        return console.usage_error(err)
    if config.sizing:
        print(f"sizing: {config.sizing}", flush=True)
    console.import_tensorflow(console.set_verbose(argv))
    from trainer import loop  # TensorFlow from here on

    try:
        return loop.train(config, argv).exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except loop.NonFiniteLoss as err:
        return console.usage_error(err, 1)
    except Exception as err:
        traceback.print_exc()
        print(f"error: training failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
