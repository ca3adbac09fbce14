"""Exports of untrained networks with the real signatures, for tests, benchmarks and trying a server without
training. `export_untrained("vaegan", path, seed=1)` builds the model registered in `trainer.models` with a tiny
config, seeds its initial weights as the training loop does, and writes its SavedModel with `trainer.export`: the
code path of a real job, so the signatures are exactly those of INTERFACE.md section 3. Different seeds give
different weights, hence different outputs: that is how tests tell versions apart.

    python -m trainer.sample_exports --kind cyclegan --seed 2 OUT_DIR
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from artifacts import console

KINDS = ("vaegan", "cyclegan", "spade", "text2image")
LATENT_DIM = 100           # the INTERFACE.md default: the seed's instance files hold 100 floats
IMAGE_SIZE = 16            # the smallest size every network of both models takes (a multiple of 16)
BASE_FILTERS = 4           # tiny: an export takes seconds, a prediction milliseconds
DCGAN_SIZED = {"image_size": 64, "base_filters": 64}  # the DCGAN paper's networks: a realistic amount of work
SPADE_CLASSES = {"sky": [110, 170, 240], "grass": [60, 170, 60], "water": [30, 80, 200]}  # name -> label colour


def tiny_options(kind: str, *, image_size: int = IMAGE_SIZE, latent_dim: int = LATENT_DIM,
                 base_filters: int = BASE_FILTERS, dcgan_sized: bool = False) -> dict:
    """The config options (beyond `seed`) of an untrained `kind`: tiny, or DCGAN-sized (64 px, 64 filters)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    options = {"image_size": image_size, "latent_dim": latent_dim, "base_filters": base_filters}
    if dcgan_sized:
        options.update(DCGAN_SIZED)
    elif kind == "cyclegan":
        options["n_blocks"] = 1
    elif kind == "text2image":  # tiny text tables too; its noise is latent_dim + condition_dim
        options.update(text_dim=8, word_buckets=64, ngram_buckets=64, condition_dim=4)
    elif kind == "spade":
        options.update(spade_filters=8, classes=list(SPADE_CLASSES), class_colors=list(SPADE_CLASSES.values()))
    if options["image_size"] % 16:
        raise ValueError(f"image_size must be a multiple of 16, got {options['image_size']}")
    return options


def export_untrained(kind: str, path: str, *, seed: int, image_size: int = IMAGE_SIZE, latent_dim: int = LATENT_DIM,
                     base_filters: int = BASE_FILTERS, dcgan_sized: bool = False) -> str:
    """Write the SavedModel of an untrained `kind` (one of KINDS) whose weights come from `seed` to the local
    directory `path` (which must not exist); return `path`."""
    options = tiny_options(kind, image_size=image_size, latent_dim=latent_dim, base_filters=base_filters,
                           dcgan_sized=dcgan_sized)
    path = os.path.abspath(path)
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    job_dir = tempfile.mkdtemp(prefix=".sample-job-", dir=os.path.dirname(path))  # same file system: a rename
    try:
        os.rename(_export_with_trainer(kind, {**options, "seed": seed}, job_dir), path)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    return path


def _export_with_trainer(kind: str, options: dict, job_dir: str) -> str:
    """The only use of the trainer's API here: the model's config class and model class from the registry, the
    seeding and building of `trainer.loop`, and `trainer.export.export_model`. Returns `<job_dir>/export`."""
    import keras

    from trainer.export import export_model
    from trainer.models import config_class, model_class

    config = config_class(kind)(job_dir=job_dir, **options)
    keras.utils.set_random_seed(config.seed)  # as the loop does: identical initial weights for identical configs
    model = model_class(kind)(config)
    model.build_for_training()
    return export_model(model, job_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.sample_exports", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="the SavedModel directory to write (must not exist)")
    parser.add_argument("--kind", choices=KINDS, default="vaegan")
    parser.add_argument("--seed", type=int, default=1, help="seed of the initial weights")
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE, help="a multiple of 16")
    parser.add_argument("--dcgan-sized", action="store_true", help="64 px, 64 filters: the DCGAN paper's networks")
    args = parser.parse_args(argv)
    return console.run(lambda: print(export_untrained(args.kind, args.path, seed=args.seed,
                                                      image_size=args.image_size, dcgan_sized=args.dcgan_sized)),
                       ValueError, FileExistsError)


if __name__ == "__main__":
    sys.exit(main())
