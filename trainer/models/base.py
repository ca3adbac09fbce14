"""The contract between a model file (`trainer/models/vaegan.py`, `cyclegan.py`, ...) and the shared machinery,
and what every model uses: sample grids (`make_grid`) and the stateless seeds of a step (`step_seeds`).

The loop (`trainer/loop.py`), the exporter (`trainer/export.py`) and the evaluation (`trainer/evaluate`) know
nothing about any particular model: they talk to a `GenerativeModel` found by name in `trainer.models`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras
import tensorflow as tf

from artifacts.dataset import split_files
from artifacts.export import EMBEDDINGS, IMAGE_BYTES, LABEL, TEXT  # noqa: F401 - the signature kinds, for the models
from trainer.config import TrainConfig


@dataclass
class SignatureSpec:
    """One exported signature: `fn` maps a float batch to a float batch.

    Images are float32 [N, image_size, image_size, 3] in [-1, 1]; embeddings are float32 [N, latent_dim].
    The exporter adds decoding (the shared `decode_and_preprocess`), PNG encoding and the `key` pass-through.
    `networks` are the Keras models `fn` uses: only their variables are saved. `extra_inputs` name further
    inputs (`label`: int64 [N] class ids) that `fn` takes after the batch, in order. `takes_key`: `fn` also gets
    the string `key` [N] last (text -> image draws its noise from text and key).
    """
    input: str
    output: str
    fn: Callable[..., tf.Tensor]
    networks: list = field(default_factory=list)
    extra_inputs: tuple[str, ...] = ()
    takes_key: bool = False


@dataclass
class EvaluationSets:
    """What one batch of a split's real data gives an evaluation (`trainer.evaluate`). Images are float
    [N, H, W, 3] in [-1, 1]; each generated or reconstructed set names the real set it is compared with.

    real:            the batch's real images by name ({"images": x}; CycleGAN {"A": a, "B": b}): data, never outputs
    samples:         name -> (real set name, images drawn afresh at every call, e.g. prior samples); the evaluator
                     calls again over the same real batches (`samples_only=True`) until it has `num_samples`
    outputs:         name -> (real set name, images that are a function of this batch, e.g. translations A -> B)
    reconstructions: name -> (real set name, that set's images reconstructed, row for row): for SSIM / PSNR
    """
    real: dict[str, tf.Tensor]
    samples: dict[str, tuple[str, tf.Tensor]] = field(default_factory=dict)
    outputs: dict[str, tuple[str, tf.Tensor]] = field(default_factory=dict)
    reconstructions: dict[str, tuple[str, tf.Tensor]] = field(default_factory=dict)


def image_split_dataset(data_dir: str, split: str, image_size: int, batch_size: int) -> tf.data.Dataset | None:
    """One deterministic pass of center-cropped batches of one split of a dataset dir (None: no such split)."""
    from preprocess.records import make_dataset

    files = split_files(data_dir, split)
    if not files:
        return None
    return make_dataset(files, image_size, True, batch_size, training=False, drop_remainder=False)


class GenerativeModel(keras.Model):
    """What every model provides. `train_step` runs inside `strategy.run`, once per replica.

    One call of `train_step` is one **step**: one update of every network of the model.
    """

    def __init__(self, config: TrainConfig, **kwargs):
        """`config`: an instance of the model's own config class (`trainer.models.config_class(name)`)."""
        super().__init__(**kwargs)
        self.config = config

    @classmethod
    def parallel_branches(cls, config: TrainConfig) -> int:
        """How many independent branches one step of this config has (chains of network calls that meet only in
        the losses): on CPUs the loop runs them side by side (`trainer/threads.py`). Default 1."""
        return 1

    def build(self, input_shape=None) -> None:
        """Every network is built when the model is made (`build_for_training` builds the optimizers): nothing is
        left for Keras to build on the first call."""
        self.built = True

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

    def derived_checkpoint_items(self) -> set[str]:
        """The checkpoint items `refresh_sampling` rebuilds from the weights and the data (the VAE-GAN's prior map):
        a checkpoint written before one of them existed still restores, and the item is refit after it."""
        return set()

    def refresh_sampling(self, data_dir: str) -> dict[str, float]:
        """Refit whatever sampling and export derive from the training data (the VAE-GAN's prior map), before
        sample grids, checkpoints and the export; returns scalars for TensorBoard. Never changes training."""
        return {}

    # ---- summaries
    def sample_grids(self, fixed) -> dict[str, tf.Tensor]:
        """Named uint8 [H, W, 3] image grids for TensorBoard and samples/ (e.g. 'samples', 'reconstructions')."""
        raise NotImplementedError

    def validation_metrics(self, fixed) -> dict[str, float]:
        """Optional scalars computed on the fixed batch at every sample step (TensorBoard `eval/`)."""
        return {}

    # ---- evaluation (`trainer.evaluate`)
    def evaluation_data(self, data_dir: str, split: str, batch_size: int) -> tf.data.Dataset | None:
        """One deterministic pass over `split` ('train' | 'val') in batches of what `evaluation_sets` takes, or
        None when the data has no such split. Default: the center-cropped images of a plain dataset dir."""
        return image_split_dataset(data_dir, split, self.config.image_size, batch_size)

    def evaluation_sets(self, real_batch, seed, samples_only: bool = False) -> EvaluationSets:
        """The real, generated and reconstructed images of one batch of `evaluation_data` (see `EvaluationSets`).
        `seed`: a stateless RNG seed (int [2]) for whatever is drawn. `samples_only`: only `samples` are wanted
        (a later call over images already seen, to reach the number of samples asked for)."""
        raise NotImplementedError

    # ---- export
    def export_spec(self) -> tuple[str, dict[str, SignatureSpec]]:
        """(name of `serving_default`, {signature name: SignatureSpec})."""
        raise NotImplementedError

    def export_assets(self) -> dict[str, bytes]:
        """Files for the SavedModel's `assets/` (say, `classes.json`), by file name."""
        return {}


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
