"""SPADE (Park et al. 2019) as a `GenerativeModel`: label map (sketch) -> image, trained on image + label map pairs.

Owns the model: the generator (`spade_generator`: SPADE residual blocks from the downsampled label map, optional
noise), `num_discriminators` PatchGAN discriminators (one per scale) on image ⊕ one-hot labels, the hinge loss
plus the discriminator feature-matching loss (weight 10), TTUR Adam optimizers; one `train_step` = one generator
update, then one update of every discriminator. The paper's VGG perceptual loss is left out: its ImageNet weights
cannot be had offline. Data: records with `image/label_map` (`python -m preprocess` on `images/` + `labels/`, or
with `--auto-labels K`); the classes (names, colours) come from the data's manifest into the config, and go to the
export's `classes.json`. Options: `spade_config.py`.
"""
from __future__ import annotations

import json

import keras
import numpy as np
import tensorflow as tf

from artifacts.dataset import split_files, train_files
from artifacts.export import CLASSES_ASSET, IMAGE_BYTES, LABEL_MAP
from preprocess.records import make_dataset
from trainer import losses, networks
from trainer.models.base import EvaluationSets, GenerativeModel, SignatureSpec, make_grid, step_seeds
from trainer.models.spade_config import SPADEConfig
from trainer.networks.spade import downsample

FIXED_PAIRS = 8  # label maps (and their real images) in the sample grids


class SPADE(GenerativeModel):
    """The generator, the multi-scale discriminators and their two Adam optimizers (TTUR)."""

    def __init__(self, config: SPADEConfig, **kwargs):
        super().__init__(config, name=kwargs.pop("name", "spade"), **kwargs)
        self.num_classes = len(config.class_colors)
        if self.num_classes < 1:
            raise ValueError("spade trains on label maps, and the data has none: give it a folder holding images/ "
                             "and labels/, or a plain image folder with --auto-labels K")
        self.palette = tf.constant(np.asarray(config.class_colors, np.float32) / 127.5 - 1.0)
        self.generator = networks.build(
            config.generator, image_size=config.image_size, num_classes=self.num_classes,
            base_filters=config.base_filters, noise_dim=config.noise_dim, spade_filters=config.spade_filters,
            norm=config.norm, name="generator")
        self.discriminators = [networks.build(config.discriminator, num_classes=self.num_classes,
                                              base_filters=config.base_filters, n_layers=config.discriminator_layers,
                                              name=f"discriminator_{i}") for i in range(config.num_discriminators)]
        self.generator_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1,
                                                         beta_2=config.beta2, name="generator_optimizer")
        self.discriminator_optimizer = keras.optimizers.Adam(config.discriminator_learning_rate, beta_1=config.beta1,
                                                             beta_2=config.beta2, name="discriminator_optimizer")

    # ---------------------------------------------------------------- data

    def _dataset(self, files, batch_size: int, **kwargs) -> tf.data.Dataset:
        return make_dataset(files, self.config.image_size, self.config.center_crop, batch_size, label_maps=True,
                            **kwargs)

    def make_train_dataset(self, data_dir: str, global_batch_size: int,
                           input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """Infinite batches (images, class-id maps), each map cropped and flipped with its image."""
        return self._dataset(train_files(data_dir), global_batch_size, training=True, input_context=input_context)

    def fixed_batch(self, data_dir: str):
        files = split_files(data_dir, "val") or train_files(data_dir)
        return next(iter(self._dataset(files, FIXED_PAIRS, training=False, drop_remainder=False)))

    def evaluation_data(self, data_dir: str, split: str, batch_size: int) -> tf.data.Dataset | None:
        """The split's center-cropped (images, label maps): samples are generated from the split's label maps."""
        files = split_files(data_dir, split)
        return self._dataset(files, batch_size, training=False, drop_remainder=False) if files else None

    # ---------------------------------------------------------------- the networks

    def one_hot(self, ids) -> tf.Tensor:
        return tf.one_hot(tf.cast(ids, tf.int32), self.num_classes, dtype=tf.float32)

    def generate(self, ids, seed=None, training: bool = False) -> tf.Tensor:
        """Class-id maps int [N, S, S] -> float32 images [N, S, S, 3] in [-1, 1]; noise from `seed` (stateless;
        None: the zero vector, as exported) when the generator takes noise."""
        labels = self.one_hot(ids)
        if not self.config.noise_dim:
            return self.generator(labels, training=training)
        shape = tf.stack([tf.shape(labels)[0], self.config.noise_dim])
        noise = tf.zeros(shape) if seed is None else tf.random.stateless_normal(shape, seed=seed)
        return self.generator([labels, noise], training=training)

    def discriminate(self, images, labels, training: bool = True) -> list[list[tf.Tensor]]:
        """Every scale's features (patch scores last): scale i sees the pair downsampled i times."""
        outputs = []
        for discriminator in self.discriminators:
            outputs.append(discriminator([images, labels], training=training))
            images, labels = downsample(images), downsample(labels)
        return outputs

    def colorize(self, ids) -> tf.Tensor:
        """Class-id maps -> their class colours, float [-1, 1] (for grids)."""
        return tf.gather(self.palette, tf.cast(ids, tf.int32))

    # ---------------------------------------------------------------- training

    def build_for_training(self) -> None:
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self._discriminator_variables())

    def _discriminator_variables(self) -> list:
        return [v for d in self.discriminators for v in d.trainable_variables]

    def _average(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

    def feature_matching(self, fake_outputs, real_outputs) -> tf.Tensor:
        """Per example: the mean L1 distance of every intermediate discriminator feature, fake vs real (fixed),
        summed over layers, averaged over scales (pix2pixHD's)."""
        total = 0.0
        for fake_features, real_features in zip(fake_outputs, real_outputs):
            for fake, real in zip(fake_features[:-1], real_features[:-1]):
                total += tf.reduce_mean(tf.abs(tf.cast(fake, tf.float32) - tf.stop_gradient(
                    tf.cast(real, tf.float32))), axis=[1, 2, 3])
        return total / len(fake_outputs)

    def train_step(self, batch) -> dict:
        """The generator (hinge + feature matching), then every discriminator (hinge) on real vs that fake."""
        images, ids = batch
        config = self.config
        labels = self.one_hot(ids)
        (noise_seed,) = step_seeds(config.seed, self.generator_optimizer.iterations, 1)
        with tf.GradientTape() as tape:
            fake = self.generate(ids, noise_seed, training=True)
            fake_outputs = self.discriminate(fake, labels)
            real_outputs = self.discriminate(images, labels)
            adversarial = sum(losses.score_g(outputs[-1]) for outputs in fake_outputs)
            matching = self.feature_matching(fake_outputs, real_outputs)
            generator_loss = self._average(adversarial + config.feature_matching_weight * matching)
        variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(generator_loss, variables), variables))

        fake = tf.stop_gradient(fake)
        with tf.GradientTape() as tape:
            per_example = sum(losses.hinge_d(real[-1], fake_scores[-1]) for real, fake_scores in
                              zip(self.discriminate(images, labels), self.discriminate(fake, labels)))
            discriminator_loss = self._average(per_example)
        variables = self._discriminator_variables()
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(discriminator_loss, variables), variables))
        return {"generator": generator_loss, "g_adversarial": self._average(adversarial),
                "feature_matching": self._average(matching), "discriminator": discriminator_loss}

    def checkpoint_items(self) -> dict:
        return {"generator": self.generator, "generator_optimizer": self.generator_optimizer,
                "discriminator_optimizer": self.discriminator_optimizer,
                **{d.name: d for d in self.discriminators}}

    def learning_rates(self, step: int) -> dict[str, float]:
        return {"generator": float(self.config.learning_rate),
                "discriminators": float(self.config.discriminator_learning_rate)}

    # ---------------------------------------------------------------- summaries, evaluation, export

    def sample_grids(self, fixed) -> dict[str, tf.Tensor]:
        """The fixed label maps (in their class colours), the images generated from them, the real images."""
        images, ids = fixed
        return {"labels": make_grid(self.colorize(ids)), "fake": make_grid(self.generate(ids)),
                "real": make_grid(images)}

    def evaluation_sets(self, real_batch, seed, samples_only: bool = False) -> EvaluationSets:
        """Images generated from the batch's label maps, compared with the split's real images."""
        images, ids = real_batch
        return EvaluationSets(real={"images": tf.convert_to_tensor(images, tf.float32)},
                              samples={"samples": ("images", self.generate(ids, seed))})

    def export_spec(self) -> tuple[str, dict[str, SignatureSpec]]:
        """`label_map` (decoded in the graph by the exporter into class ids) -> `image_bytes`."""
        return LABEL_MAP, {LABEL_MAP: SignatureSpec(input=LABEL_MAP, output=IMAGE_BYTES, fn=self.generate,
                                                    networks=[self.generator])}

    def export_assets(self) -> dict[str, bytes]:
        classes = [{"name": name, "color": list(color)} for name, color in
                   zip(self.config.classes, self.config.class_colors)]
        return {CLASSES_ASSET: (json.dumps({"classes": classes}, indent=1) + "\n").encode()}
