"""The contract between a model file (`trainer/vaegan.py`, `trainer/cyclegan.py`, ...) and the shared machinery.

The loop (`trainer/loop.py`) and the exporter (`trainer/export.py`) know nothing about any particular model: they
talk to a `GenerativeModel` found by name in `MODELS`. A new model is a new file exposing a `GenerativeModel`
subclass named `Model`, plus one line in `MODELS`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

import keras
import tensorflow as tf

from artifacts.export import EMBEDDINGS, IMAGE_BYTES  # noqa: F401 - the signature kinds, for the models
from trainer.config import TrainConfig

# name -> module that defines `Model` (imported only when that model is used)
MODELS = {
    "vaegan": "trainer.vaegan",
    "cyclegan": "trainer.cyclegan",
}



@dataclass
class SignatureSpec:
    """One exported signature: `fn` maps a float batch to a float batch.

    Images are float32 [N, image_size, image_size, 3] in [-1, 1]; embeddings are float32 [N, latent_dim].
    The exporter adds decoding (the shared `decode_and_preprocess`), PNG encoding and the `key` pass-through.
    `networks` are the Keras models `fn` uses: only their variables are saved.
    """
    input: str
    output: str
    fn: Callable[[tf.Tensor], tf.Tensor]
    networks: list = field(default_factory=list)


class GenerativeModel(keras.Model):
    """What every model provides. `train_step` runs inside `strategy.run`, once per replica.

    One call of `train_step` is one **step**: one update of every network of the model.
    """

    def __init__(self, config: TrainConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config

    # ---- data
    def make_train_dataset(self, data_dir: str, global_batch_size: int) -> tf.data.Dataset:
        """Infinite, batched (global batch) dataset of what `train_step` takes."""
        raise NotImplementedError

    def fixed_batch(self, data_dir: str):
        """A small, deterministic batch (from the val split when there is one) used for sample grids."""
        raise NotImplementedError

    # ---- training
    def build_for_training(self) -> None:
        """Create every network and optimizer variable (so a checkpoint restores into existing variables)."""
        raise NotImplementedError

    def train_step(self, batch) -> dict:
        """One step on this replica's share of the batch; returns scalar losses (already averaged over the
        global batch, so the loop SUM-reduces them across replicas)."""
        raise NotImplementedError

    def checkpoint_items(self) -> dict:
        """Trackables to checkpoint: every network and optimizer, by stable names."""
        raise NotImplementedError

    def learning_rates(self, step: int) -> dict[str, float]:
        """Learning rate of each optimizer at `step` (for TensorBoard)."""
        raise NotImplementedError

    # ---- summaries
    def sample_grids(self, fixed) -> dict[str, tf.Tensor]:
        """Named uint8 [H, W, 3] image grids for TensorBoard and samples/ (e.g. 'samples', 'reconstructions')."""
        raise NotImplementedError

    def validation_metrics(self, fixed) -> dict[str, float]:
        """Optional scalars computed on the fixed batch at every sample step (TensorBoard `eval/`)."""
        return {}

    # ---- export
    def export_spec(self) -> tuple[str, dict[str, SignatureSpec]]:
        """(name of `serving_default`, {signature name: SignatureSpec})."""
        raise NotImplementedError


def model_class(name: str) -> type[GenerativeModel]:
    try:
        module = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None
    return importlib.import_module(module).Model


def make_grid(images: tf.Tensor, columns: int = 8) -> tf.Tensor:
    """float [N, H, W, 3] in [-1, 1] -> uint8 [rows*H, columns*W, 3] (missing cells black)."""
    from preprocess.records import to_uint8

    images = to_uint8(images)
    n = int(images.shape[0])
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    pad = rows * columns - n
    if pad:
        images = tf.concat([images, tf.zeros([pad, *images.shape[1:]], tf.uint8)], axis=0)
    h, w = int(images.shape[1]), int(images.shape[2])
    grid = tf.reshape(images, [rows, columns, h, w, 3])
    grid = tf.transpose(grid, [0, 2, 1, 3, 4])
    return tf.reshape(grid, [rows * h, columns * w, 3])
