"""`python -m trainer.task`: the trainer's command line (INTERFACE.md section 2, Cloud ML Engine convention).

Configuration, lowest to highest priority: TrainConfig defaults < the job's saved `config.json` (so re-running a
job resumes it with the settings it was started with) < `--config FILE.json` (or `--model FILE.json`) < flags.
`center_crop` always comes from the data's manifest.json; so does `image_size` unless set explicitly.
`--help` and argument errors never import TensorFlow.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from artifacts import dataset, jobs, storage
from trainer.config import STRATEGIES, TrainConfig

FLAGS = [  # (flag, type, help); every default is None so that only flags actually given override
    ("--data-dir", str, "TFRecords + manifest.json from `python -m preprocess` (local or gs://)"),
    ("--job-dir", str, "the job dir (local or gs://); its last component is the job name"),
    ("--model", str, "vaegan, cyclegan, or a JSON config file"),
    ("--config", str, "JSON file setting any of these options (names with underscores)"),
    ("--image-size", int, "training resolution (default: the data's)"),
    ("--batch-size", int, "global batch size, split across replicas (default 64)"),
    ("--max-steps", int, "train until this step (default 10000)"),
    ("--latent-dim", int, "embedding size (default 100)"),
    ("--base-filters", int, "width of the first conv layer (default 64)"),
    ("--learning-rate", float, "Adam learning rate (default 2e-4)"),
    ("--beta1", float, "Adam beta1 (default 0.5)"),
    ("--checkpoint-every-steps", int, "default 500"),
    ("--summary-every-steps", int, "TensorBoard scalars and progress lines (default 100)"),
    ("--sample-every-steps", int, "sample grids in logs/ and samples/ (default 500)"),
    ("--seed", int, "default 0"),
    ("--n-blocks", int, "CycleGAN: ResNet blocks (default 9 at >= 256 px, else 6)"),
    ("--cycle-weight", float, "CycleGAN: cycle-consistency weight (default 10)"),
    ("--identity-weight", float, "CycleGAN: identity weight, times the cycle weight (default 0.5)"),
    ("--pool-size", int, "CycleGAN: generated-image pool size (default 50)"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer.task", description="Train a genart model.")
    for flag, kind, text in FLAGS:
        parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument("--strategy", choices=STRATEGIES, default=None,
                        help="tf.distribute strategy (default auto: all local GPUs, else one device)")
    return parser


def resolve_config(argv: list[str]) -> TrainConfig:
    flags = {k: v for k, v in vars(build_parser().parse_args(argv)).items() if v is not None}
    if flags.get("model", "").endswith(".json"):
        if "config" in flags:
            raise ValueError("give the JSON config once: --model FILE.json or --config FILE.json")
        flags["config"] = flags.pop("model")
    values: dict = {}
    if "job_dir" in flags and storage.exists(jobs.config_path(flags["job_dir"])):
        values.update(storage.read_json(jobs.config_path(flags["job_dir"])))
    if "config" in flags:
        values.update(storage.read_json(flags["config"]))
    explicit = set(values) | set(flags)
    config = TrainConfig.from_dict(values).merged(flags)
    for name in ("data_dir", "job_dir"):
        if not getattr(config, name):
            raise ValueError(f"--{name.replace('_', '-')} is required")
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
