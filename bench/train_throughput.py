"""Training throughput against the machine's limit, in one run. Per row (model x variant): images/s of the bare
compiled train step on in-memory tensors, FLOPs per image of that step (counted from its traced graph, forward +
backward of every network update: `bench/step_flops.py`), the GFLOP/s that makes, its fraction of this machine's
measured fp32 peak (a large tf.matmul loop in the same process), and the peak RSS. Variants: `before` (the old
step: the model's `fused_step=false`) and `after` (the default). Then the full loop (`trainer.loop.train`: tf.data,
summaries, sample grids, checkpoints) of `after`, against its bare step (goal: >= 0.9x).

    python bench/train_throughput.py        # VAE-GAN 64 px batch 64 and CycleGAN 128 px batch 1, before and after
    python bench/train_throughput.py --model cyclegan --rounds 7 --steps 8

Each variant runs in its own process (so that its peak RSS is its own), and the processes take turns, round after
round (before, after, before, ...), so that the load of a shared machine hits both alike: the rates printed are
medians over rounds, with the load average, and so is the CPU time per image (all threads of the process: the
work done, less sensitive to what else runs). The default width (--base-filters 16, not the model default 64)
keeps the run to a few minutes on 2 CPU cores; every setting is printed. The data are generated blob images, stored like
`python -m preprocess` does without --center-crop (load size 1.125x, random crop + flip in the trainer).
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO_ROOT, os.path.join(REPO_ROOT, "tests"), os.path.join(REPO_ROOT, "bench")]
UNPAIRED_MODELS = {"cyclegan"}
ROW_IMAGE_SIZES = {"vaegan": 64, "cyclegan": 128}  # the batch size of a row is its model's default (64 / 1)
VARIANTS = {"before": False, "after": True}        # the model option `fused_step`
PEAK_MATRIX = 2048


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="all", help="vaegan, cyclegan or all (default: one row each)")
    parser.add_argument("--image-size", type=int, default=None, help="default: the row's (64 / 128)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the model's (64 / 1)")
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--latent-dim", type=int, default=100)
    parser.add_argument("--n-blocks", type=int, default=None, help="CycleGAN ResNet blocks (default: the model's)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of before / after")
    parser.add_argument("--loop-steps", type=int, default=100, help="steps of the full loop (0: skip it)")
    parser.add_argument("--steps-per-execution", type=int, default=1, help="the full loop's")
    parser.add_argument("--images", type=int, default=256, help="generated training images")
    return parser.parse_args(argv)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    """CPU time of this process, every thread (on a shared machine: the work done, whoever else runs)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_data(model: str, data_dir: str, image_size: int, images: int) -> None:
    from train_data import write_records

    from artifacts.dataset import DOMAINS

    for sub in (DOMAINS if model in UNPAIRED_MODELS else ("",)):
        write_records(os.path.join(data_dir, sub), n_train=images, n_val=16, image_size=image_size,
                      center_crop=False, seed=len(sub))


def matmul_peak_gflops(size: int = PEAK_MATRIX, seconds: float = 3.0) -> float:
    """fp32 GFLOP/s of back-to-back size x size matmuls (the best of a few timed batches)."""
    import tensorflow as tf

    a = tf.random.stateless_normal([size, size], seed=[1, 2])

    @tf.function
    def chain(x, count):
        for _ in tf.range(count):
            x = tf.matmul(x, a) * (1.0 / size)
        return x

    chain(a, tf.constant(1)).numpy()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        chain(a, tf.constant(4)).numpy()
        best = max(best, 4 * 2 * size ** 3 / (time.perf_counter() - started) / 1e9)
    return best


def make_config(model: str, args, data_dir: str, job_dir: str, fused: bool):
    from trainer import models

    config_class = models.config_class(model)
    options = {"n_blocks": args.n_blocks} if args.n_blocks and "n_blocks" in config_class.keys() else {}
    every = max(1, args.loop_steps // 2)
    return config_class.from_dict(dict(
        data_dir=data_dir, job_dir=job_dir, image_size=args.image_size or ROW_IMAGE_SIZES[model],
        batch_size=args.batch_size or config_class().batch_size, base_filters=args.base_filters,
        latent_dim=args.latent_dim, max_steps=max(args.loop_steps, 1) + 1, fused_step=fused, precision="float32",
        steps_per_execution=args.steps_per_execution, summary_every_steps=max(1, args.loop_steps // 6),
        sample_every_steps=every, checkpoint_every_steps=every, eval_every_steps=0, **options)).validate()


def worker(connection, config) -> None:
    """One variant's process: builds the model and its bare step, then answers the parent's commands:
    ("steps", n) -> (wall, CPU) seconds of n steps; ("flops",) -> FLOPs per image; ("rss",) -> peak RSS MiB;
    ("loop",) -> (images/s, first-step seconds) of the full loop; ("stop",)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from step_flops import step_flops

    from trainer import loop, threads
    from trainer.models import model_class

    layout = threads.split_for_branches(model_class(config.model).parallel_branches(config))  # as the loop does
    model = model_class(config.model)(config)
    model.build_for_training()
    batch = next(iter(model.make_train_dataset(config.data_dir, config.batch_size)))  # materialised once
    step = tf.function(model.train_step)
    for _ in range(2):  # tracing, then a warm-up step
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
    connection.send(layout or "TensorFlow's default thread pools")
    while True:
        command, *rest = connection.recv()
        if command == "steps":
            started, cpu_started = time.perf_counter(), cpu_seconds()
            for _ in range(rest[0]):
                losses = step(batch)
            tf.nest.map_structure(lambda t: t.numpy(), losses)
            connection.send((time.perf_counter() - started, cpu_seconds() - cpu_started))
        elif command == "flops":
            connection.send(step_flops(step, batch) / config.batch_size)
        elif command == "rss":
            connection.send(peak_rss_mib())
        elif command == "loop":
            result = loop.train(config, stream=io.StringIO())
            connection.send((result.images_per_second, result.first_step_seconds))
        else:
            return


def measure(model: str, args, peak: float) -> list[dict]:
    """The rows of `model`: before and after, measured in alternating rounds."""
    context = multiprocessing.get_context("spawn")
    work = tempfile.mkdtemp(prefix="genart-bench-")
    try:
        data_dir = os.path.join(work, "data")
        image_size = args.image_size or ROW_IMAGE_SIZES[model]
        write_data(model, data_dir, image_size, args.images)
        workers, layouts = {}, {}
        for variant, fused in VARIANTS.items():
            config = make_config(model, args, data_dir, os.path.join(work, variant), fused)
            parent, child = context.Pipe()
            process = context.Process(target=worker, args=(child, config), daemon=True)
            process.start()
            workers[variant] = (parent, process, config)
            layouts[variant] = parent.recv()  # one at a time: tracing is not timed, but keeps the CPU busy
        config = workers["after"][2]
        print(f"settings: model={model} image_size={config.image_size} batch_size={config.batch_size} "
              f"base_filters={args.base_filters} latent_dim={args.latent_dim} steps/round={args.steps} "
              f"rounds={args.rounds} (before, after alternating); threads: "
              + "; ".join(f"{variant}: {layout}" for variant, layout in layouts.items()), flush=True)
        seconds = {variant: [] for variant in VARIANTS}
        for _ in range(args.rounds):
            for variant, (connection, _, _) in workers.items():
                connection.send(("steps", args.steps))
                seconds[variant].append(connection.recv())
        rows = []
        for variant, (connection, process, config) in workers.items():
            connection.send(("flops",))
            flops = connection.recv()
            connection.send(("rss",))
            rss = connection.recv()
            rates = [args.steps * config.batch_size / wall for wall, _ in seconds[variant]]
            rate = statistics.median(rates)
            cpu = statistics.median(cpu / (args.steps * config.batch_size) for _, cpu in seconds[variant])
            row = dict(model=f"{model} {config.image_size}px b{config.batch_size}", variant=variant, rate=rate,
                       spread=(min(rates), max(rates)), flops=flops, gflops=rate * flops / 1e9, rss=rss, cpu=cpu)
            row["fraction"] = row["gflops"] / peak
            if variant == "after" and args.loop_steps:
                connection.send(("loop",))
                row["loop"], row["loop_first"] = connection.recv()
            connection.send(("stop",))
            process.join(timeout=60)
            rows.append(row)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_table(rows: list[dict], peaks: list[float], load: tuple) -> None:
    print(f"\nmeasured fp32 peak ({PEAK_MATRIX}x{PEAK_MATRIX} tf.matmul loop, this process): "
          f"{max(peaks):.1f} GFLOP/s (runs: {', '.join(f'{p:.1f}' for p in peaks)}); "
          f"load average before / after: {load[0]:.2f} / {load[1]:.2f} on {os.cpu_count()} cores")
    print("model                 variant  img/s (median; min-max)   speed-up  CPU ms/img (speed-up)  GFLOP/img  "
          "GFLOP/s  of peak  peak RSS MiB (vs before)")
    before = {}
    for row in rows:
        base = before.setdefault(row["model"], row)
        low, high = row["spread"]
        print(f"{row['model']:<21} {row['variant']:<7}  {row['rate']:7.1f} ({low:6.1f}-{high:6.1f})     "
              f"{row['rate'] / base['rate']:6.2f}x  {1e3 * row['cpu']:10.1f} ({base['cpu'] / row['cpu']:4.2f}x)  "
              f"{row['flops'] / 1e9:9.3f}  {row['gflops']:7.1f}  "
              f"{row['fraction']:6.1%}  {row['rss']:7.0f} ({row['rss'] / base['rss'] - 1:+.1%})")
    loops = [row for row in rows if "loop" in row]
    if loops:
        print("\nfull loop (after, tf.data + summaries + samples + checkpoints) vs its bare step (goal >= 0.9):")
        for row in loops:
            print(f"{row['model']:<21} {row['loop']:7.1f} img/s = {row['loop'] / row['rate']:.2f}x the bare step "
                  f"(first step, tracing: {row['loop_first']:.1f} s)")
    print("Goals on a CPU: CycleGAN after >= 1.15x before, VAE-GAN >= 1.1x; peak RSS no more than +10%. "
          "(CycleGAN: one image = one A image and one B image; FLOPs: convolutions and matmuls only.)")


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    models = list(ROW_IMAGE_SIZES) if args.model == "all" else [args.model]
    load_before = os.getloadavg()[0]
    peaks = [matmul_peak_gflops()]
    rows = [row for model in models for row in measure(model, args, peaks[0])]
    peaks.append(matmul_peak_gflops())
    for row in rows:  # against the best peak seen
        row["fraction"] = row["gflops"] / max(peaks)
    print_table(rows, peaks, (load_before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
