"""Small generated training data for the trainer tests: images of coloured blobs, as an image folder or as
TFRecords + manifest.json written directly with `preprocess.records` (no preprocess CLI needed)."""
from __future__ import annotations

import io
import json
import os

import numpy as np
from cyclegan_data import write_unpaired_data
from PIL import Image


def blob_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: a plain background with one to three soft coloured ellipses."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.ones([size, size, 3], np.float32) * rng.uniform(0, 0.4, 3)
    for _ in range(rng.integers(1, 4)):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        ry, rx = rng.uniform(0.1, 0.3, 2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        image[inside] = rng.uniform(0.3, 1.0, 3)
    return (image * 255).round().astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def write_records(data_dir: str, n_train: int = 64, n_val: int = 16, image_size: int = 32,
                  train_shards: int = 1, seed: int = 0, center_crop: bool = True) -> str:
    """TFRecords + manifest.json as `python -m preprocess` writes them: images stored at `image_size`
    (center_crop) or at load_size = 1.125 x image_size, for the trainer's random crops."""
    import tensorflow as tf

    from artifacts.dataset import shard_name
    from preprocess.records import load_size_for, make_example

    rng = np.random.default_rng(seed)
    stored = image_size if center_crop else load_size_for(image_size)
    os.makedirs(data_dir, exist_ok=True)
    for split, count, shards in (("train", n_train, train_shards), ("val", n_val, 1)):
        for shard in range(shards):
            with tf.io.TFRecordWriter(os.path.join(data_dir, shard_name(split, shard, shards))) as writer:
                for i in range(shard, count, shards):
                    image = blob_image(rng, stored)
                    writer.write(make_example(png_bytes(image), stored, stored, f"{split}_{i}.png"))
    manifest = {"version": 1, "image_size": image_size, "load_size": load_size_for(image_size),
                "center_crop": center_crop, "counts": {"train": n_train, "val": n_val}, "source": "generated",
                "skipped": []}
    with open(os.path.join(data_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return data_dir


def write_image_folder(folder: str, count: int = 24, size: int = 40, seed: int = 0) -> str:
    """An artist's folder: PNG and JPEG blob images, some not square."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        image = blob_image(rng, size)
        if i % 3 == 0:
            image = np.concatenate([image, image[:, : size // 2]], axis=1)  # landscape
        ext = "jpg" if i % 2 else "png"
        Image.fromarray(image).save(os.path.join(folder, f"blob_{i:03d}.{ext}"))
    return folder


# ---------------------------------------------------------------- running the trainer in tests

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Models whose training the shared-loop tests run, with a writer of tiny data and tiny trainer flags.
# (A new model adds itself here, e.g. "cyclegan": (cyclegan_data.write_unpaired_data, [...]).)
MODELS = {
    "vaegan": (write_records, ["--image-size", "32", "--base-filters", "8", "--batch-size", "8",
                               "--latent-dim", "8"]),
    "cyclegan": (lambda data_dir: write_unpaired_data(data_dir, train=16, val=4),
                 ["--image-size", "32", "--base-filters", "4", "--n-blocks", "1", "--batch-size", "2",
                  "--pool-size", "4"]),
}
TRAINED_MODELS = sorted(MODELS)


def write_data(model: str, data_dir: str) -> str:
    MODELS[model][0](str(data_dir))
    return str(data_dir)


def trainer_command(model: str, data_dir, job_dir, **flags) -> list[str]:
    """`python -m trainer.task` with the model's tiny flags; `flags` as max_steps=10 -> --max-steps 10."""
    import sys

    command = [sys.executable, "-m", "trainer.task", "--model", model, "--data-dir", str(data_dir),
               "--job-dir", str(job_dir), *MODELS[model][1]]
    for name, value in flags.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    return command


def read_job(job_dir) -> dict | None:
    path = os.path.join(str(job_dir), "job.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def checkpoint_step(job_dir) -> int | None:
    """The step of the job's latest checkpoint (from CheckpointManager's `checkpoint` index), or None."""
    path = os.path.join(str(job_dir), "checkpoints", "checkpoint")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            if line.startswith("model_checkpoint_path:"):
                return int(line.split('"')[1].rsplit("-", 1)[1])
    return None


def optimizer_iterations(checkpoint_prefix: str) -> dict[str, int]:
    """Every optimizer's iteration count saved in a checkpoint, by checkpoint key."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(checkpoint_prefix)
    return {key: int(reader.get_tensor(key)) for key in reader.get_variable_to_shape_map()
            if "_iterations/" in key}


def wait_until(condition, timeout: float, proc=None, what: str = "condition") -> None:
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
