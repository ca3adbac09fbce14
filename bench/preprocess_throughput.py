#!/usr/bin/env python3
"""Images/s of `python -m preprocess` with 1 and 2 workers against a plain single-process PIL loop, same files.

    .venv/bin/python bench/preprocess_throughput.py [--images 600] [--size 800x600] [--workers 1,2] [--repeats 2]

Generates photo-like JPEGs (smooth colour fields + sensor-like noise, seeded) in a temp dir, then times:
- the plain loop: PIL open -> convert("RGB") -> resize shorter side to load_size -> save PNG, one process;
- the real pipeline (`preprocess.pipeline.run`: safe decode, EXIF, TF antialiased resize, PNG, tf.train.Example,
  shards, manifest) for each worker count.
Each configuration runs --repeats times; the fastest counts. Workers fork from a server process that imports
TensorFlow once per calling process: that one-time start is timed apart and excluded from the rate, while each
run's own pool start (fork, TF runtime, tracing) is included. Wall-clock rates depend on what else runs: where the
scheduler shares CPU per session (Linux autogroup) and other sessions are busy, one session cannot get more than
its share however many workers it starts: the bench measures that headroom with a pure-CPU calibration and
prints it. "CPU ms/image" (single-process runs) does not depend on the load.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_SIZE = 64


def make_photos(directory: str, count: int, width: int, height: int) -> list[str]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for i in range(count):
        fx, fy, phase = rng.uniform(20, 90, size=3)
        field = np.stack([np.sin(x / fx + phase), np.cos(y / fy - phase), np.sin((x + y) / (fx + fy))], axis=-1)
        noise = rng.normal(0, 10, size=(height, width, 3)).astype(np.float32)
        pixels = np.clip(field * 90 + 128 + noise, 0, 255).astype(np.uint8)
        path = os.path.join(directory, f"photo_{i:04d}.jpg")
        Image.fromarray(pixels).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def plain_pil_loop(paths: list[str], out_dir: str, load_size: int) -> None:
    os.makedirs(out_dir, exist_ok=True)
    for path in paths:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        scale = load_size / min(rgb.size)
        resized = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        resized.save(buffer, "PNG")
        with open(os.path.join(out_dir, os.path.basename(path) + ".png"), "wb") as f:
            f.write(buffer.getvalue())


def _spin(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def parallel_headroom(processes: int, iterations: int = 5_000_000) -> float:
    """How many times faster `processes` processes of pure CPU work finish than one, here and now (ideal: processes).

    A calibration for the numbers below: on a shared machine this is what parallel workers can gain at best.
    """
    import multiprocessing

    start = time.perf_counter()
    _spin(iterations)
    one = time.perf_counter() - start
    with multiprocessing.get_context("fork").Pool(processes) as pool:  # before TensorFlow is imported
        start = time.perf_counter()
        pool.map(_spin, [iterations] * processes)
        many = time.perf_counter() - start
    return processes * one / many


def best_of(repeats: int, fn) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of the fastest of `repeats` runs: other load only slows runs."""
    runs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description="preprocess throughput vs a plain PIL loop")
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--size", default="800x600", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration; the fastest counts")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    worker_counts = [int(v) for v in args.workers.split(",")]

    headroom = {w: parallel_headroom(w) for w in worker_counts if w > 1}
    from preprocess import pipeline, records  # TensorFlow import: outside every timed region

    work = tempfile.mkdtemp(prefix="genart-bench-")
    try:
        photos = os.path.join(work, "photos")
        os.makedirs(photos)
        paths = make_photos(photos, args.images, width, height)
        print(f"{args.images} JPEGs of {width}x{height} -> image size {IMAGE_SIZE} (random-crop records); "
              f"{pipeline.available_cpus()} CPUs; load average {os.getloadavg()[0]:.1f}; best of {args.repeats}")

        load_size = records.load_size_for(IMAGE_SIZE)
        wall, cpu = best_of(args.repeats, lambda: plain_pil_loop(paths, os.path.join(work, "pil"), load_size))
        baseline = args.images / wall
        print(f"  plain PIL loop, 1 process  {baseline:7.1f} images/s{'':31s}"
              f"CPU {cpu / args.images * 1e3:5.1f} ms/image")

        rates = {}
        for workers in worker_counts:
            options = pipeline.Options(image_size=IMAGE_SIZE, workers=workers)
            startup = 0.0
            if workers > 1:  # the forkserver imports TF once per process: time it apart from the runs
                tiny = os.path.join(work, "tiny")
                os.makedirs(tiny, exist_ok=True)
                for path in paths[:workers]:
                    shutil.copy(path, tiny)
                startup, _ = best_of(1, lambda: pipeline.run(tiny, os.path.join(work, "warm"), options,
                                                             progress=False))
            wall, cpu = best_of(args.repeats, lambda: pipeline.run(photos, os.path.join(work, "out"), options,
                                                                   progress=False))
            rates[workers] = args.images / wall
            speedup = f", {rates[workers] / rates[1]:.2f}x --workers 1" if workers > 1 and 1 in rates else ""
            note = (f"+ {startup:.1f} s one-time worker-server start (TF import) before the first run" if startup
                    else f"CPU {cpu / args.images * 1e3:5.1f} ms/image")
            print(f"  preprocess --workers {workers:<3d}   {rates[workers]:7.1f} images/s  "
                  f"{rates[workers] / baseline:.2f}x PIL loop{speedup:<20s} {note}")
        for workers, gain in headroom.items():
            print(f"  calibration: {workers} processes of pure CPU work ran {gain:.2f}x as fast as one on this machine "
                  f"just now (ideal {workers:.2f}x) — the most {workers} workers could gain here")
        print(f"  (load average now {os.getloadavg()[0]:.1f}; worker runs include starting their pool; "
              "CPU is this process only, so it is not shown for worker runs)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
