#!/usr/bin/env python3
"""Instances/s of `python -m serving.batch_predict` against a plain one-at-a-time loop, on the same instances.

    .venv/bin/python bench/batch_throughput.py [--instances 2000] [--batch-size 64] [--models tiny,dcgan]
                                               [--model-dir EXPORT] [--modes in_memory,multi_threading,...]

Writes `--instances` embeddings lines (`{"embeddings": [100 floats], "key": ...}`) into 3 JSON-lines files. For
each model it then times, every instance becoming a PNG written as one JSON line with `{"b64"}`:
- the plain loop: read the lines, `json.loads`, call the SavedModel's `embeddings` signature with one instance,
  base64 the PNG, write a JSON line (no validation, no batching), model loading included;
- the pipeline (`serving.batch_predict.main`, DirectRunner): with 1 worker (Beam's default `in_memory` mode), then
  with `--direct_num_workers 2` in each other `--direct_running_mode` asked for. Each time is the wall clock of
  the whole job: building the pipeline, starting workers, loading the model in each, validating every instance,
  writing both output files.
Both sides run in one warm process: TensorFlow and Beam are imported and one 10-instance pipeline has run before
any timing (the cold start of that first run is printed too), as `python -m` pays those imports either way.
Models: untrained VAE-GANs exported by `trainer.sample_exports` (the real networks and signatures): `tiny`
(16 px, 4 filters: per-call overhead dominates, as with any small model) and `dcgan` (64 px, 64 filters: the
decoder is dense + 4 transposed convolutions to 64x64, compute-bound on CPU); or `--model-dir` for a trained
export. Numbers are whatever the machine gives while other work runs on it (the load average is printed): run it
twice if the load is noisy.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import glob
import io
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LATENT_DIM = 100
FILES = 3


def write_instances(directory: str, count: int) -> str:
    """`count` embeddings lines spread over FILES files in `directory`; returns their wildcard."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    handles = [open(os.path.join(directory, f"part-{i}.json"), "w") for i in range(FILES)]
    for i in range(count):
        vector = [round(float(x), 6) for x in rng.normal(size=LATENT_DIM)]
        handles[i % FILES].write(json.dumps({"embeddings": vector, "key": str(i)}) + "\n")
    for handle in handles:
        handle.close()
    return os.path.join(directory, "part-*.json")


def plain_loop(model_dir: str, pattern: str, out_path: str) -> int:
    import tensorflow as tf

    signature = tf.saved_model.load(model_dir).signatures["embeddings"]
    done = 0
    with open(out_path, "w") as out:
        for path in sorted(glob.glob(pattern)):
            with open(path) as f:
                for line in f:
                    instance = json.loads(line)
                    result = signature(embeddings=tf.constant([instance["embeddings"]], tf.float32),
                                       key=tf.constant([instance["key"]]))
                    png = result["image_bytes"].numpy()[0]
                    out.write(json.dumps({"image_bytes": {"b64": base64.b64encode(png).decode()},
                                          "key": result["key"].numpy()[0].decode()}) + "\n")
                    done += 1
    return done


def pipeline(model_dir: str, pattern: str, out_dir: str, batch_size: int, beam_args: list[str]) -> int:
    """Run batch prediction; return the number of result lines written."""
    from serving.batch import cli as batch_predict

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = batch_predict.main(["--input-paths", pattern, "--output-path", out_dir, "--model-dir", model_dir,
                                   "--batch-size", str(batch_size), *beam_args])
    if code != 0:
        raise SystemExit(f"batch_predict failed ({code}):\n{stderr.getvalue()[-3000:]}")
    return sum(1 for path in glob.glob(os.path.join(out_dir, "prediction.results-*")) for line in open(path)
               if line.strip())


def timed(fn, *args) -> tuple[float, int]:
    start = time.monotonic()
    count = fn(*args)
    return time.monotonic() - start, count


def report(label: str, count: int, seconds: float, baseline: float | None = None) -> float:
    rate = count / seconds
    versus = f"  ({rate / baseline:.2f}x the loop)" if baseline else ""
    print(f"  {label:52s}{count:6d} in {seconds:6.1f} s = {rate:7.1f} instances/s{versus}", flush=True)
    return rate


def bench_model(name: str, model_dir: str, pattern: str, work: str, args) -> None:
    print(f"model {name} ({model_dir}); load average {os.getloadavg()[0]:.1f}", flush=True)
    seconds, done = timed(plain_loop, model_dir, pattern, os.path.join(work, f"loop-{name}.json"))
    assert done == args.instances, done
    loop_rate = report("plain loop, one instance per call", done, seconds)
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        workers = 1 if mode == "in_memory" else 2
        beam_args = ["--direct_running_mode", mode, "--direct_num_workers", str(workers)]
        seconds, written = timed(pipeline, model_dir, pattern, os.path.join(work, f"out-{name}-{mode}"),
                                 args.batch_size, beam_args)
        assert written == args.instances, written
        report(f"pipeline, {mode}, {workers} worker{'s' * (workers > 1)}, batch {args.batch_size}", written, seconds,
               loop_rate)
        if mode == "in_memory":  # how much of that is the per-job cost: the same job on 10 instances
            fixed, _ = timed(pipeline, model_dir, os.path.join(work, "warm-up", "part-*.json"),
                             os.path.join(work, f"out-{name}-fixed"), args.batch_size, beam_args)
            print(f"    of which per-job cost (a 10-instance job): {fixed:.1f} s; beyond it "
                  f"{(written - 10) / max(seconds - fixed, 1e-9):.1f} instances/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--models", default="tiny,dcgan", help="untrained models to run: tiny, dcgan or both")
    parser.add_argument("--model-dir", help="a VAE-GAN export to run instead of the test models")
    parser.add_argument("--modes", default="in_memory,multi_threading,multi_processing",
                        help="DirectRunner modes; in_memory runs 1 worker, the others --direct_num_workers 2")
    args = parser.parse_args()

    from trainer.sample_exports import export_untrained

    work = tempfile.mkdtemp(prefix="genart-batch-bench-")
    try:
        pattern = write_instances(os.path.join(work, "in"), args.instances)
        print(f"{args.instances} embeddings instances in {FILES} files; {os.cpu_count()} CPUs", flush=True)
        models = ({"export": args.model_dir} if args.model_dir else
                  {name: export_untrained("vaegan", os.path.join(work, f"model-{name}"), seed=1,
                                          dcgan_sized=name == "dcgan") for name in args.models.split(",")})
        warm_up = write_instances(os.path.join(work, "warm-up"), 10)
        seconds, _ = timed(pipeline, next(iter(models.values())), warm_up, os.path.join(work, "out-warm-up"),
                           args.batch_size, [])
        print(f"warm-up: first pipeline of this process (10 instances, Beam's lazy imports): {seconds:.1f} s")
        for name, model_dir in models.items():
            bench_model(name, model_dir, pattern, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
