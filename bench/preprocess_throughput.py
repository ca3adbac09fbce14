#!/usr/bin/env python3
"""Images/s of `python -m preprocess` with 1 and 2 workers against a plain single-process PIL loop, same files.

    .venv/bin/python bench/preprocess_throughput.py [--images 240] [--size 800x600] [--workers 1,2]

Generates photo-like JPEGs (smooth colour fields + sensor-like noise, seeded) in a temp dir, then times:
- the plain loop: PIL open -> convert("RGB") -> resize shorter side to load_size -> save PNG, one process;
- the real pipeline (`preprocess.pipeline.run`: safe decode, EXIF, TF antialiased resize, PNG, tf.train.Example,
  shards, manifest) for each worker count. Worker processes start once per run (a forkserver that imports
  TensorFlow); that one-time start-up is timed separately and reported both excluded and included.
Numbers are wall-clock on whatever else the machine is doing; run it twice if the load is noisy.
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


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="preprocess throughput vs a plain PIL loop")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--size", default="800x600", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    worker_counts = [int(v) for v in args.workers.split(",")]

    from preprocess import pipeline, records  # TensorFlow import: outside every timed region

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    work = tempfile.mkdtemp(prefix="genart-bench-")
    try:
        photos = os.path.join(work, "photos")
        os.makedirs(photos)
        paths = make_photos(photos, args.images, width, height)
        print(f"{args.images} JPEGs of {width}x{height} -> image size {IMAGE_SIZE} (random-crop records), "
              f"{cpus} CPUs visible, load average {os.getloadavg()[0]:.1f}")

        baseline = args.images / timed(lambda: plain_pil_loop(paths, os.path.join(work, "pil"),
                                                              records.load_size_for(IMAGE_SIZE)))
        print(f"  plain PIL loop, 1 process   {baseline:8.1f} images/s")

        tiny = os.path.join(work, "tiny")  # two files: enough for a 2-worker pool to start
        os.makedirs(tiny)
        for path in paths[:2]:
            shutil.copy(path, tiny)
        rates = {}
        for workers in worker_counts:
            options = pipeline.Options(image_size=IMAGE_SIZE, workers=workers)
            startup = 0.0
            if workers > 1:  # the forkserver (imports TF once) starts with the first pool of the process
                startup = timed(lambda: pipeline.run(tiny, os.path.join(work, "warm"), options, progress=False))
            seconds = timed(lambda: pipeline.run(photos, os.path.join(work, f"out{workers}"), options,
                                                 progress=False))
            rates[workers] = args.images / seconds
            line = f"  preprocess --workers {workers:<3d}   {rates[workers]:8.1f} images/s  " \
                   f"({rates[workers] / baseline:.2f}x the PIL loop)"
            if startup:
                cold = args.images / (seconds + startup)
                line += f"; with the one-time {startup:.1f} s pool start-up: {cold:.1f} images/s " \
                        f"({cold / baseline:.2f}x)"
            print(line)
        if 1 in rates:
            for workers, rate in rates.items():
                if workers > 1:
                    print(f"  speed-up of --workers {workers} over --workers 1: {rate / rates[1]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
