"""`python -m trainer.evaluate`: the sample-quality metrics of a job's checkpoint for its train and val images
(INTERFACE.md section 9). `--help` and argument errors answer without importing TensorFlow (exit 2, one line)."""
from __future__ import annotations

import argparse
import sys
import traceback

from artifacts import console, jobs, storage
from trainer.evaluate import names, report

DESCRIPTION = """Evaluate a genart job: sample the model at one of its checkpoints and compare what it makes with the
job's train and val images. Writes JOB/eval/metrics-<step>.json, TensorBoard scalars in JOB/logs/eval and prints a
train/val table. Metric names say their feature net (kid_digits, fid_inception, ...); kid, fd and mmd are
distances (lower is closer to the real images), precision, recall, is, ssim and psnr scores (higher is better)."""
EPILOG = """examples:
  python -m trainer.evaluate --job-dir workspace/jobs/my_art
  python -m trainer.evaluate --job-dir gs://my-bucket/jobs/my_art --checkpoint 5000 --metrics kid,fd \\
      --feature-net inception --inception-weights inception_v3_notop.weights.h5"""
MIN_SAMPLES = 4  # k-NN precision / recall need k + 1 = 4


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, exit 2 (argparse would print the whole usage first)
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m trainer.evaluate", description=DESCRIPTION, epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job-dir", required=True, help="the job dir (local or gs://)")
    parser.add_argument("--checkpoint", default="latest", help="'latest' (default) or the step of a checkpoint "
                        "in JOB/checkpoints/")
    parser.add_argument("--metrics", default=",".join(names.DEFAULT_METRICS),
                        help=f"comma-separated, of {', '.join(names.METRICS)} (default: all; is needs the digits "
                        "net; ssim and psnr need reconstructions)")
    parser.add_argument("--num-samples", type=int, default=1000, help="images generated per split; the real "
                        "sets use min(this, the split's size) images (default: 1000)")
    parser.add_argument("--feature-net", choices=names.FEATURE_NETS, default="digits",
                        help="digits: genart's own MNIST CNN (default); inception: InceptionV3 pool3 from "
                        "--inception-weights")
    parser.add_argument("--inception-weights", metavar="FILE", help="InceptionV3 'notop' weights (.weights.h5 or "
                        "Keras .h5); nothing is ever downloaded")
    parser.add_argument(console.VERBOSE_FLAG, action="store_true", help=console.VERBOSE_HELP)
    return parser


def checked(args: argparse.Namespace) -> tuple[int, list[str]]:
    """(the checkpoint's step, the metrics) of valid arguments; ValueError with a clear message otherwise."""
    metrics = names.parse_metrics(args.metrics)
    if not metrics:
        raise ValueError("--metrics names no metric")
    if args.num_samples < MIN_SAMPLES:
        raise ValueError(f"--num-samples must be at least {MIN_SAMPLES}, got {args.num_samples}")
    if args.feature_net == "inception":
        if not args.inception_weights:
            raise ValueError("--feature-net inception needs --inception-weights FILE (nothing is downloaded)")
        if not storage.exists(args.inception_weights):
            raise ValueError(f"--inception-weights: no such file: {args.inception_weights}")
    elif args.inception_weights:
        raise ValueError("--inception-weights goes with --feature-net inception")
    if not storage.exists(jobs.config_path(args.job_dir)):
        raise ValueError(f"{args.job_dir} is not a genart job dir (it has no {jobs.CONFIG_FILE})")
    steps = jobs.checkpoint_steps(args.job_dir)
    if not steps:
        raise ValueError(f"{args.job_dir} has no checkpoint yet: train the job first")
    if args.checkpoint == "latest":
        return steps[-1], metrics
    if not args.checkpoint.isdigit():
        raise ValueError(f"--checkpoint must be 'latest' or a step number, got {args.checkpoint!r}")
    if int(args.checkpoint) not in steps:
        raise ValueError(f"no checkpoint of step {int(args.checkpoint)} in {jobs.CHECKPOINTS}/; there are: "
                         f"{', '.join(map(str, steps))}")
    return int(args.checkpoint), metrics


def progress_bar(total: int):
    """tqdm on a terminal, shown once the evaluation has taken a few seconds; nothing otherwise."""
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="evaluating", file=sys.stderr, delay=3, leave=False,
                disable=not sys.stderr.isatty())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        step, metrics = checked(args)
    except (ValueError, OSError) as err:
        parser.error(str(err))
    console.import_tensorflow(args.verbose)
    from trainer.evaluate import run  # TensorFlow from here on

    print(f"evaluating {args.job_dir} at step {step}: {args.num_samples} samples per split, "
          f"{args.feature_net} features", flush=True)
    try:
        with progress_bar(2 * args.num_samples) as bar:
            path, record, evaluation = run.evaluate_job(args.job_dir, step, metrics, args.num_samples,
                                                        args.feature_net, args.inception_weights, bar.update)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - reported, with its traceback
        traceback.print_exc()
        print(f"error: evaluation failed: {err}", file=sys.stderr)
        return 1
    for note in evaluation.notes:
        print(f"note: {note}")
    print(report.table(record["metrics"]))
    print(f"metrics: {path}")
    print(f"TensorBoard: {storage.join(args.job_dir, report.TENSORBOARD_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
