"""The contract between a model file (`trainer/models/vaegan.py`, `cyclegan.py`, ...) and the shared machinery,
and what every model uses: sample grids (`make_grid`) and the stateless seeds of a step (`step_seeds`).

The loop (`trainer/loop.py`) and the exporter (`trainer/export.py`) know nothing about any particular model: they
talk to a `GenerativeModel` found by name in `trainer.models`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras
import tensorflow as tf

from artifacts.export import EMBEDDINGS, IMAGE_BYTES  # noqa: F401 - the signature kinds, for the models
from trainer.config import TrainConfig


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
        """`config`: an instance of the model's own config class (`trainer.models.config_class(name)`)."""
        super().__init__(**kwargs)
        self.config = config

    # ---- data
    def make_train_dataset(self, data_dir: str, global_batch_size: int,
                           input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """Infinite, batched dataset of what `train_step` takes: this input pipeline's one (the loop calls it
        through `strategy.distribute_datasets_from_function`). Pass `input_context` on to `make_dataset`, which
        then reads only this pipeline's shard of the records and batches by the per-replica batch (None: one
        pipeline, global batch)."""
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


def step_seeds(seed: int, step, count: int = 2) -> list[tf.Tensor]:
    """`count` independent stateless RNG seeds (int64 [2]) for one step on this replica, from (the config's seed,
    `step`, the replica id). `step` is a variable the checkpoint holds (an optimizer's `iterations`), so a resumed
    run draws exactly the noise the uninterrupted run would have drawn, and no RNG state needs checkpointing."""
    base = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
    replica = tf.distribute.get_replica_context()
    replica_id = replica.replica_id_in_sync_group if replica is not None else 0
    base = tf.random.experimental.stateless_fold_in(base, replica_id)
    return tf.unstack(tf.random.experimental.stateless_split(base, count))


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
