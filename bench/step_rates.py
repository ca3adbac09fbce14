"""Images/s of the bare train step per precision and XLA setting, and of the full loop on 1 vs 2 replicas: the
training half of `bench/device_check.sh` (meant for a GPU machine).

    python bench/step_rates.py              # VAE-GAN 64 px batch 64, CycleGAN 256 px batch 1: float32 / mixed / +XLA
    python bench/step_rates.py --cpu-smoke  # tiny models, no XLA (it is very slow on CPU): checks the script runs

Mixed is what `--precision auto` picks on this machine (mixed_bfloat16 on compute capability >= 8, mixed_float16 on
>= 7; on a CPU, where auto means float32, mixed_bfloat16 is forced so that the row means something).
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO_ROOT, os.path.join(REPO_ROOT, "tests")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROWS = {"vaegan": dict(image_size=64, batch_size=64), "cyclegan": dict(image_size=256, batch_size=1)}
SMOKE = {"vaegan": dict(image_size=32, batch_size=8, base_filters=4, latent_dim=8),
         "cyclegan": dict(image_size=32, batch_size=1, base_filters=4, n_blocks=1)}


def bare_rate(model: str, options: dict, precision: str, jit: bool, steps: int) -> tuple[float, float]:
    """(images/s, first-step seconds) of `tf.function(train_step)` on a random batch held in memory."""
    import keras
    import tensorflow as tf

    from trainer import precision as precisions
    from trainer.models import config_class, model_class

    keras.utils.set_random_seed(0)
    config = config_class(model)(precision=precision, **options)
    with precisions.policy(precision):
        instance = model_class(model)(config)
        instance.build_for_training()
    shape = [config.batch_size, config.image_size, config.image_size, 3]
    images = tf.random.stateless_uniform(shape, [1, 2], -1.0, 1.0)
    batch = (images, tf.random.stateless_uniform(shape, [3, 4], -1.0, 1.0)) if model == "cyclegan" else images
    step = tf.function(instance.train_step, jit_compile=jit)
    started = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), step(batch))
    first = time.perf_counter() - started
    tf.nest.map_structure(lambda t: t.numpy(), step(batch))  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        losses = step(batch)
    tf.nest.map_structure(lambda t: t.numpy(), losses)
    return steps * config.batch_size / (time.perf_counter() - started), first


def loop_rate(model: str, options: dict, strategy: str, steps: int, work: str) -> float:
    """Images/s of the full loop (`trainer.loop.train`) under `strategy`, after its first step."""
    from train_data import write_data

    from trainer import loop
    from trainer.models import config_class

    data_dir = os.path.join(work, f"data_{model}")
    if not os.path.exists(data_dir):
        write_data(model, data_dir)
    config = config_class(model)(data_dir=data_dir, job_dir=os.path.join(work, f"job_{model}_{strategy}"),
                                 strategy=strategy, max_steps=steps + 1, summary_every_steps=steps,
                                 sample_every_steps=10 * steps, checkpoint_every_steps=10 * steps,
                                 eval_every_steps=0, **options)
    return loop.train(config.validate(), stream=io.StringIO()).images_per_second


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny models, a few steps, no XLA")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (default 30; smoke 2)")
    args = parser.parse_args(argv)
    import tensorflow as tf

    from trainer import precision as precisions

    gpus = tf.config.list_physical_devices("GPU")
    steps = args.steps or (2 if args.cpu_smoke else 30)
    rows = SMOKE if args.cpu_smoke else ROWS
    mixed = precisions.resolve("auto")
    mixed = "mixed_bfloat16" if mixed == "float32" else mixed
    variants = [("float32", False), (mixed, False), (mixed, True)]
    print(f"devices: {len(gpus)} GPU(s) {[tf.config.experimental.get_device_details(g) for g in gpus]}; "
          f"timed steps per row: {steps}", flush=True)
    print(f"{'model':<22} {'precision':<15} {'XLA':<4} {'img/s':>8}  {'first step (tracing)':>20}")
    for model, options in rows.items():
        label = f"{model} {options['image_size']}px b{options['batch_size']}"
        for precision, jit in variants:
            if jit and not gpus:
                print(f"{label:<22} {precision:<15} {'yes':<4} {'skipped: XLA is only used on GPUs':>30}")
                continue
            rate, first = bare_rate(model, options, precision, jit, steps)
            print(f"{label:<22} {precision:<15} {'yes' if jit else 'no':<4} {rate:8.1f}  {first:18.1f} s",
                  flush=True)
    model, options = "vaegan", {**rows["vaegan"], "batch_size": 2 * rows["vaegan"]["batch_size"]}
    strategies = ["default", "mirrored"] if len(gpus) >= 2 or args.cpu_smoke else []
    with tempfile.TemporaryDirectory() as work:
        for strategy in strategies:
            replicas = 2 if len(gpus) >= 2 else 1
            rate = loop_rate(model, options, strategy, steps, work)
            print(f"full loop vaegan {options['image_size']}px b{options['batch_size']}, {strategy} strategy "
                  f"({replicas if strategy == 'mirrored' else 1} replica(s), auto precision): {rate:.1f} img/s",
                  flush=True)
    if not strategies:
        print("2-replica MirroredStrategy: skipped (fewer than 2 GPUs)")


if __name__ == "__main__":
    main()
