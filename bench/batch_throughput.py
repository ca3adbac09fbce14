#!/usr/bin/env python3
"""Instances/s of `python -m serving.batch_predict` against a plain one-at-a-time loop, on the same instances.

    .venv/bin/python bench/batch_throughput.py [--instances 2000] [--batch-size 64] [--model-dir EXPORT]
                                               [--modes in_memory,multi_threading,multi_processing]

Writes `--instances` embeddings lines (`{"embeddings": [100 floats], "key": ...}`) into 3 JSON-lines files, then
times, each turning every instance into a PNG written as one JSON line with `{"b64"}`:
- the plain loop: read the lines, `json.loads`, call the SavedModel's `embeddings` signature with one instance,
  base64 the PNG, write a JSON line — no validation, no batching;
- the pipeline (`serving.batch_predict.main`, DirectRunner): once with 1 worker (Beam's default `in_memory` mode),
  then with `--direct_num_workers 2` in each other `--direct_running_mode` asked for.
Every time is wall clock of the whole thing: the loop includes loading the model, the pipeline includes Beam's
start-up, model loading per worker and writing both output files. The model is the DCGAN-sized VAE-GAN-like export
of `tests/serving_models.py` (dense + 4 transposed convolutions to 64x64, PNG-encoded), unless `--model-dir`.
Numbers are whatever the machine gives while other work runs on it: run twice if the load is noisy.
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


def write_instances(directory: str, count: int, latent_dim: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = [os.path.join(directory, f"part-{i}.json") for i in range(FILES)]
    handles = [open(path, "w") for path in paths]
    for i in range(count):
        vector = [round(float(x), 6) for x in rng.normal(size=latent_dim)]
        handles[i % FILES].write(json.dumps({"embeddings": vector, "key": str(i)}) + "\n")
    for handle in handles:
        handle.close()
    return paths


def plain_loop(model_dir: str, paths: list[str], out_path: str) -> int:
    import tensorflow as tf

    signature = tf.saved_model.load(model_dir).signatures["embeddings"]
    done = 0
    with open(out_path, "w") as out:
        for path in paths:
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


def pipeline(model_dir: str, pattern: str, out_dir: str, batch_size: int, beam_args: list[str]) -> str:
    from serving import batch_predict

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = batch_predict.main(["--input-paths", pattern, "--output-path", out_dir, "--model-dir", model_dir,
                                   "--batch-size", str(batch_size), *beam_args])
    if code != 0:
        raise SystemExit(f"batch_predict failed ({code}):\n{stderr.getvalue()[-3000:]}")
    return stdout.getvalue().splitlines()[0]


def count_lines(pattern: str) -> int:
    return sum(1 for path in glob.glob(pattern) for line in open(path) if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model-dir", help="a VAE-GAN export (default: the DCGAN-sized test model)")
    parser.add_argument("--modes", default="in_memory,multi_threading,multi_processing",
                        help="DirectRunner modes; in_memory runs 1 worker, the others --direct_num_workers 2")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="genart-batch-bench-")
    try:
        model_dir = args.model_dir
        if not model_dir:
            from tests.serving_models import saved_model
            model_dir = saved_model("vaegan", 1, dcgan=True)
        os.makedirs(os.path.join(work, "in"))
        paths = write_instances(os.path.join(work, "in"), args.instances, LATENT_DIM)
        print(f"{args.instances} embeddings instances in {FILES} files; model {model_dir}; "
              f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")

        start = time.monotonic()
        done = plain_loop(model_dir, paths, os.path.join(work, "loop.json"))
        loop_s = time.monotonic() - start
        loop_rate = done / loop_s
        print(f"plain loop, one instance per call:          {done} in {loop_s:6.1f} s = {loop_rate:7.1f} instances/s")

        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            workers = 1 if mode == "in_memory" else 2
            out_dir = os.path.join(work, f"out-{mode}")
            beam_args = ["--direct_running_mode", mode, "--direct_num_workers", str(workers)]
            start = time.monotonic()
            summary = pipeline(model_dir, os.path.join(work, "in", "part-*.json"), out_dir, args.batch_size,
                               beam_args)
            elapsed = time.monotonic() - start
            written = count_lines(os.path.join(out_dir, "prediction.results-*"))
            assert written == args.instances, (written, summary)
            rate = written / elapsed
            label = f"pipeline, {mode}, {workers} worker{'s' if workers > 1 else ''}, batch {args.batch_size}:"
            print(f"{label:44s}{written} in {elapsed:6.1f} s = {rate:7.1f} instances/s  "
                  f"({rate / loop_rate:.2f}x the loop)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
