"""Training throughput, in one run: (a) the bare compiled train step on in-memory tensors, (b) the full loop
(tf.data from TFRecords, summaries, sample grids, checkpoints: `trainer.loop.train`), their ratio (goal: the full
loop >= 0.9x the bare step), the first-step (tracing) times and the peak RSS.

    python bench/train_throughput.py                  # both rows: VAE-GAN 64 px batch 64, CycleGAN 128 px batch 1
    python bench/train_throughput.py --model cyclegan --image-size 128 --batch-size 1 --base-filters 64

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
ROW_IMAGE_SIZES = {"vaegan": 64, "cyclegan": 128}  # the batch size of a row is its model's default (64 / 1)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="all", help="vaegan, cyclegan or all (default: one row each)")
    parser.add_argument("--image-size", type=int, default=None, help="default: the row's (64 / 128)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the model's (64 / 1)")
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--latent-dim", type=int, default=100)
    parser.add_argument("--n-blocks", type=int, default=None, help="CycleGAN ResNet blocks (default: the model's)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps of each measurement")
    parser.add_argument("--images", type=int, default=512, help="generated training images")
    return parser.parse_args(argv)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_data(model: str, data_dir: str, image_size: int, images: int) -> None:
    from train_data import write_records

    from artifacts.dataset import DOMAINS

    for sub in (DOMAINS if model in UNPAIRED_MODELS else ("",)):
        write_records(os.path.join(data_dir, sub), n_train=images, n_val=16, image_size=image_size,
                      center_crop=False, seed=len(sub))


class BareStep:
    """`tf.function(model.train_step)` on one batch held in memory (no input pipeline, no outputs)."""

    def __init__(self, config, data_dir: str):
        import tensorflow as tf

        from trainer import distribute
        from trainer.models import model_class

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


def measure(model: str, args: argparse.Namespace) -> dict:
    """One row: bare step vs full loop of `model` (image size from ROW_IMAGE_SIZES, batch size the model's
    default, unless given)."""
    import tensorflow as tf

    from trainer import distribute, models

    config_class = models.config_class(model)
    image_size = args.image_size or ROW_IMAGE_SIZES[model]
    batch_size = args.batch_size or config_class().batch_size
    # --n-blocks is CycleGAN's: a VAE-GAN row of `--model all` runs without it
    model_options = {"n_blocks": args.n_blocks} if args.n_blocks and "n_blocks" in config_class.keys() else {}
    work = tempfile.mkdtemp(prefix="genart-bench-")
    try:
        data_dir = os.path.join(work, "data")
        write_data(model, data_dir, image_size, args.images)
        every = max(1, args.steps // 2)
        config = config_class.from_dict(dict(
            data_dir=data_dir, job_dir=os.path.join(work, "bench_job"),
            image_size=image_size, batch_size=batch_size, base_filters=args.base_filters,
            latent_dim=args.latent_dim, max_steps=args.steps + 1, **model_options,
            summary_every_steps=max(1, args.steps // 6), sample_every_steps=every, checkpoint_every_steps=every,
        )).validate()
        device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
        print(f"settings: model={model} image_size={image_size} batch_size={batch_size} "
              f"base_filters={args.base_filters} latent_dim={args.latent_dim} steps={args.steps} "
              f"images={args.images} device={device} xla={distribute.use_jit()}; the full loop writes summaries "
              f"every {config.summary_every_steps} steps, sample grids and checkpoints every {every}", flush=True)
        # Bare steps before and after the full loop, so that a change in machine load hits both sides.
        bare = BareStep(config, data_dir)
        bare.run(args.steps // 2)
        full, full_first = full_loop(config)
        bare.run(args.steps - args.steps // 2)
        traces = bare.step.experimental_get_tracing_count()
        if traces > 1:
            print(f"WARNING: the bare step of {model} traced {traces} times")
        return {"model": f"{model} {image_size}px b{batch_size}", "bare": bare.images_per_second, "full": full,
                "bare_first": bare.first_step_seconds, "full_first": full_first}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    models = list(ROW_IMAGE_SIZES) if args.model == "all" else [args.model]
    rows = [measure(model, args) for model in models]
    print("\nmodel                    (a) bare img/s  (b) full loop img/s  ratio b/a (goal >= 0.9)  "
          "first step a / b (tracing)")
    for row in rows:
        print(f"{row['model']:<24} {row['bare']:14.1f}  {row['full']:19.1f}  {row['full'] / row['bare']:23.2f}  "
              f"{row['bare_first']:8.1f} s / {row['full_first']:.1f} s")
    print("(CycleGAN: one image = one A image and one B image.)" if "cyclegan" in models else "")
    print(f"peak RSS of this process: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
