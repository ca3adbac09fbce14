"""Training throughput, in one run: (a) the bare compiled train step on in-memory tensors, (b) the full loop
(tf.data from TFRecords, summaries, sample grids, checkpoints: `trainer.loop.train`), their ratio (goal: the full
loop >= 0.9x the bare step), the first-step (tracing) times and the peak RSS.

    python bench/train_throughput.py                       # VAE-GAN, 64 px, batch 64
    python bench/train_throughput.py --model cyclegan --image-size 128 --batch-size 1 --base-filters 16

The default width (--base-filters 16, not the model default 64) keeps the run to a few minutes on 2 CPU cores;
every setting is printed. The data are generated blob images, stored like `python -m preprocess` does without
--center-crop (load size 1.125x, random crop + flip in the trainer); unpaired models get A/ and B/.
"""
from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO_ROOT, os.path.join(REPO_ROOT, "tests")]
UNPAIRED_MODELS = {"cyclegan"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vaegan")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--latent-dim", type=int, default=100)
    parser.add_argument("--n-blocks", type=int, default=None, help="CycleGAN ResNet blocks")
    parser.add_argument("--steps", type=int, default=30, help="timed steps of each measurement")
    parser.add_argument("--images", type=int, default=512, help="generated training images")
    return parser.parse_args(argv)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_data(model: str, data_dir: str, image_size: int, images: int) -> None:
    from train_data import write_records

    for sub in (("A", "B") if model in UNPAIRED_MODELS else ("",)):
        write_records(os.path.join(data_dir, sub), n_train=images, n_val=16, image_size=image_size,
                      center_crop=False, seed=len(sub))


class BareStep:
    """`tf.function(model.train_step)` on one batch held in memory (no input pipeline, no outputs)."""

    def __init__(self, config, data_dir: str):
        import tensorflow as tf

        from trainer import distribute
        from trainer.base import model_class

        self.model = model_class(config.model)(config)
        self.model.build_for_training()
        self.batch = next(iter(self.model.make_train_dataset(data_dir, config.batch_size)))  # materialised once
        self.batch_size = config.batch_size
        self.step = tf.function(self.model.train_step, jit_compile=distribute.use_jit())
        self.seconds, self.steps = 0.0, 0
        started = time.perf_counter()
        self.run(1, timed=False)
        self.first_step_seconds = time.perf_counter() - started
        self.run(1, timed=False)  # warm-up, as the full loop's rate also starts after its first step

    def run(self, steps: int, timed: bool = True) -> None:
        import tensorflow as tf

        started = time.perf_counter()
        for _ in range(steps):
            losses = self.step(self.batch)
        tf.nest.map_structure(lambda t: t.numpy(), losses)  # wait for the last step
        if timed:
            self.seconds += time.perf_counter() - started
            self.steps += steps

    @property
    def images_per_second(self) -> float:
        return self.steps * self.batch_size / self.seconds


def full_loop(config) -> tuple[float, float]:
    """(images/s after the first step, first-step seconds) of the real training loop."""
    from trainer import loop

    result = loop.train(config, stream=io.StringIO())
    return result.images_per_second, result.first_step_seconds


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from trainer import distribute
    from trainer.config import TrainConfig

    work = tempfile.mkdtemp(prefix="genart-bench-")
    try:
        data_dir = os.path.join(work, "data")
        write_data(args.model, data_dir, args.image_size, args.images)
        every = max(1, args.steps // 2)
        config = TrainConfig(
            model=args.model, data_dir=data_dir, job_dir=os.path.join(work, "bench_job"),
            image_size=args.image_size, batch_size=args.batch_size, base_filters=args.base_filters,
            latent_dim=args.latent_dim, n_blocks=args.n_blocks, max_steps=args.steps + 1,
            summary_every_steps=max(1, args.steps // 6), sample_every_steps=every, checkpoint_every_steps=every,
        ).validate()
        device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
        print(f"settings: model={args.model} image_size={args.image_size} batch_size={args.batch_size} "
              f"base_filters={args.base_filters} latent_dim={args.latent_dim} steps={args.steps} "
              f"images={args.images} device={device} xla={distribute.use_jit()}")
        print(f"full loop writes: summaries every {config.summary_every_steps} steps, sample grids and "
              f"checkpoints every {every} steps")
        # Bare steps before and after the full loop, so that a change in machine load hits both sides.
        bare = BareStep(config, data_dir)
        bare.run(args.steps // 2)
        full, full_first = full_loop(config)
        bare.run(args.steps - args.steps // 2)
        traces = bare.step.experimental_get_tracing_count()
        print(f"(a) bare train step : {bare.images_per_second:8.1f} img/s   first step (tracing) "
              f"{bare.first_step_seconds:6.1f} s" + (f"   WARNING: traced {traces} times" if traces > 1 else ""))
        print(f"(b) full loop       : {full:8.1f} img/s   first step (tracing) {full_first:6.1f} s")
        print(f"ratio full/bare     : {full / bare.images_per_second:8.2f}   (goal >= 0.9)")
        print(f"peak RSS            : {peak_rss_mib():8.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
