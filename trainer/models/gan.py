"""The GAN zoo (INTERFACE.md section 8): any generator with any discriminator of the same conditioning, trained
with the loss of the discriminator's choice (`gan_config.py` resolves the choices and their templates).

One step = one generator update after `n_critic` discriminator updates, each on its own slice of the step's
batch (the dataset yields n_critic batches at once), as Arjovsky et al. and Gulrajani et al. do. Per
update: the loss by name (`trainer.losses`), plus λ·(‖∇D(x̂)‖₂ − 1)² on random interpolates for `wgan-gp`; the
critic's weight clipping is a Keras weight constraint, applied by the optimizer after each of its updates.
DiffAugment (`--augment`) transforms real and fake images before every discriminator call, in both updates.
`--ema D` keeps the generator's weight moving average in its optimizer; samples and the export use it.
`cgan`: class labels (int64) come with the images; the generator draws images of the real batch's labels.
Randomness is stateless from (seed, step, replica) (`base.step_seeds`), so a resumed run draws the same noise.
"""
from __future__ import annotations

import json

import keras
import numpy as np
import tensorflow as tf

from artifacts.dataset import split_files, train_files
from artifacts.export import CLASSES_ASSET
from preprocess.records import make_dataset
from trainer import losses, networks
from trainer.augment import diff_augment
from trainer.choices import ZOO_LOSSES
from trainer.models.base import (EMBEDDINGS, IMAGE_BYTES, LABEL, EvaluationSets, GenerativeModel, SignatureSpec,
                                 make_grid, step_seeds)
from trainer.models.gan_config import CHOICES, GANZooConfig, augment_policy
from trainer.precision import scaled_optimizer

SAMPLE_GRID_SIZE = 64
GRID_COLUMNS = 8


def make_optimizer(config: GANZooConfig, learning_rate: float, name: str, ema: float = 0.0):
    kwargs = dict(learning_rate=learning_rate, name=f"{name}_{config.optimizer}")
    if ema:
        kwargs.update(use_ema=True, ema_momentum=ema)
    if config.optimizer == "rmsprop":
        return scaled_optimizer(keras.optimizers.RMSprop(**kwargs), config.precision)
    return scaled_optimizer(keras.optimizers.Adam(beta_1=config.beta1, beta_2=config.beta2, **kwargs),
                            config.precision)


class GANZoo(GenerativeModel):
    def __init__(self, config: GANZooConfig, **kwargs):
        super().__init__(config, name="gan_zoo", **kwargs)
        self.policy = augment_policy(config.augment)
        self.num_classes = len(config.classes) if config.conditional else 0
        if config.conditional and self.num_classes < 2:
            raise ValueError(f"{config.generator} needs class labels (at least 2 classes): train on an image folder "
                             "with one sub-folder per class, or an .npz with `labels`")
        self.generator = self._build_generator("generator")
        self.ema_generator = self._build_generator("ema_generator") if config.ema else None
        critic = CHOICES[config.discriminator]
        self.discriminator = networks.build(
            critic.critic, image_size=config.image_size, base_filters=config.discriminator_filters,
            hidden_layers=config.discriminator_layers, norm=config.discriminator_norm,
            spectral_norm=config.spectral_norm, clip_value=config.clip_value, num_classes=self.num_classes,
            name="discriminator")
        self.discriminator_loss, self.generator_loss = losses.get_gan_losses(ZOO_LOSSES[config.loss])
        self.generator_optimizer = make_optimizer(config, config.generator_learning_rate, "generator", config.ema)
        self.discriminator_optimizer = make_optimizer(config, config.discriminator_learning_rate, "discriminator")
        noise = np.random.default_rng(config.seed).standard_normal([SAMPLE_GRID_SIZE, config.latent_dim])
        self.sample_noise = self.add_weight(shape=noise.shape, initializer=keras.initializers.Constant(noise),
                                            trainable=False, name="sample_noise")
        # cgan grids: one class per row (row r shows class r mod the class count)
        self.sample_labels = tf.constant(np.arange(SAMPLE_GRID_SIZE) // GRID_COLUMNS % max(self.num_classes, 1),
                                         tf.int64)

    def _build_generator(self, name: str):
        config = self.config
        return networks.build(CHOICES[config.generator].generator, image_size=config.image_size,
                              latent_dim=config.latent_dim, base_filters=config.generator_filters,
                              hidden_layers=config.generator_layers, num_classes=self.num_classes, name=name)

    # ---------------------------------------------------------------- data

    def make_train_dataset(self, data_dir: str, global_batch_size: int,
                           input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """Batches of n_critic * the batch (images, or (images, labels) for cgan)."""
        files = train_files(data_dir)
        return make_dataset(files, self.config.image_size, self.config.center_crop,
                            global_batch_size * self.config.n_critic, training=True, seed=None,
                            labels=self.config.conditional, input_context=input_context,
                            cache_mib=self.config.input_cache_mib)

    def fixed_batch(self, data_dir: str):
        return None  # the grids are drawn from fixed noise (and fixed labels)

    def evaluation_data(self, data_dir: str, split: str, batch_size: int) -> tf.data.Dataset | None:
        """The split's center-cropped images; (images, labels) for cgan, whose samples take the split's labels."""
        files = split_files(data_dir, split)
        if not files:
            return None
        return make_dataset(files, self.config.image_size, True, batch_size, training=False, drop_remainder=False,
                            labels=self.config.conditional)

    def evaluation_sets(self, real_batch, seed, samples_only: bool = False) -> EvaluationSets:
        """Samples of the exported generator (from the batch's labels for cgan), as many as the batch's images."""
        images, labels = real_batch if self.config.conditional else (real_batch, None)
        images = tf.convert_to_tensor(images, tf.float32)
        latents = self._latents(tf.shape(images)[0], seed)
        fake = self.generate(latents, labels, generator=self.exported_generator())
        return EvaluationSets(real={"images": images}, samples={"samples": ("images", fake)})

    # ---------------------------------------------------------------- the networks

    def generate(self, latents, labels=None, training: bool = False, generator=None):
        generator = generator or self.generator
        if not self.num_classes:
            return generator(latents, training=training)
        return generator([latents, tf.convert_to_tensor(labels, tf.int64)], training=training)

    def critic(self, images, labels=None, training: bool = True):
        return self.discriminator([images, labels] if self.num_classes else images, training=training)

    def exported_generator(self):
        """The generator samples and exports use: the EMA one when `ema` is on (its weights brought up to date
        from the optimizer's moving averages; the live weights before the first step)."""
        if self.ema_generator is None:
            return self.generator
        optimizer = getattr(self.generator_optimizer, "inner_optimizer", self.generator_optimizer)  # loss scaling
        trained = int(optimizer.iterations.numpy()) > 0
        sources = optimizer._model_variables_moving_average if trained else self.generator.trainable_variables
        for target, source in zip(self.ema_generator.trainable_variables, sources):
            target.assign(source)
        for target, source in zip(self.ema_generator.non_trainable_variables,
                                  self.generator.non_trainable_variables):
            target.assign(source)
        return self.ema_generator

    # ---------------------------------------------------------------- training

    def build_for_training(self) -> None:
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def checkpoint_items(self) -> dict:
        return {"generator": self.generator, "discriminator": self.discriminator,
                "generator_optimizer": self.generator_optimizer,
                "discriminator_optimizer": self.discriminator_optimizer, "sample_noise": self.sample_noise}

    def learning_rates(self, step: int) -> dict[str, float]:
        return {"generator": float(self.config.generator_learning_rate),
                "discriminator": float(self.config.discriminator_learning_rate)}

    def _average(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

    def _latents(self, batch, seed):
        return tf.random.stateless_normal(tf.stack([batch, self.config.latent_dim]), seed=seed)

    def train_step(self, batch) -> dict:
        config = self.config
        images, labels = batch if config.conditional else (batch, None)
        n_critic = config.n_critic
        real_slices = tf.split(images, n_critic)
        label_slices = tf.split(labels, n_critic) if labels is not None else [None] * n_critic
        size = tf.shape(real_slices[0])[0]
        seeds = step_seeds(config.seed, self.generator_optimizer.iterations, 4 * n_critic + 2)
        out = {}
        for i, (real, y) in enumerate(zip(real_slices, label_slices)):
            noise_seed, real_seed, fake_seed, alpha_seed = seeds[4 * i:4 * i + 4]
            fake = self.generate(self._latents(size, noise_seed), y, training=True)
            with tf.GradientTape() as tape:
                real_in = diff_augment(real, self.policy, real_seed)
                fake_in = diff_augment(fake, self.policy, fake_seed)
                per_example = self.discriminator_loss(self.critic(real_in, y), self.critic(fake_in, y))
                if config.loss == "wgan-gp":
                    alpha = tf.random.stateless_uniform([size], seed=alpha_seed)
                    penalty = losses.gradient_penalty(lambda x: self.critic(x, y), real_in, fake_in, alpha,
                                                      config.gp_weight)
                    out["gradient_penalty"] = self._average(penalty)
                    per_example += penalty
                discriminator_loss = self._average(per_example)
                scaled = self.discriminator_optimizer.scale_loss(discriminator_loss)  # mixed_float16, on the tape
            variables = self.discriminator.trainable_variables
            gradients = tape.gradient(scaled, variables)
            self.discriminator_optimizer.apply_gradients(zip(gradients, variables))
        with tf.GradientTape() as tape:
            fake = self.generate(self._latents(size, seeds[-2]), label_slices[-1], training=True)
            scores = self.critic(diff_augment(fake, self.policy, seeds[-1]), label_slices[-1])
            generator_loss = self._average(self.generator_loss(scores))
            scaled = self.generator_optimizer.scale_loss(generator_loss)
        variables = self.generator.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.generator_optimizer.apply_gradients(zip(gradients, variables))
        return {"generator": generator_loss, "discriminator": discriminator_loss, **out}

    # ---------------------------------------------------------------- summaries and export

    def sample_grids(self, fixed) -> dict[str, tf.Tensor]:
        labels = self.sample_labels if self.num_classes else None
        samples = self.generate(tf.convert_to_tensor(self.sample_noise), labels,
                                generator=self.exported_generator())
        return {"samples": make_grid(samples, GRID_COLUMNS)}

    def export_spec(self) -> tuple[str, dict[str, SignatureSpec]]:
        generator = self.exported_generator()
        if not self.num_classes:
            return EMBEDDINGS, {EMBEDDINGS: SignatureSpec(
                input=EMBEDDINGS, output=IMAGE_BYTES, fn=lambda z: self.generate(z, generator=generator),
                networks=[generator])}

        def conditional(latents, labels):
            in_range = tf.logical_and(labels >= 0, labels < self.num_classes)
            check = tf.debugging.Assert(tf.reduce_all(in_range), [
                f"{LABEL} must be a class id in [0, {self.num_classes}) (assets/{CLASSES_ASSET}); got", labels])
            with tf.control_dependencies([check]):
                return self.generate(latents, tf.identity(labels), generator=generator)

        return EMBEDDINGS, {EMBEDDINGS: SignatureSpec(input=EMBEDDINGS, output=IMAGE_BYTES, fn=conditional,
                                                      networks=[generator], extra_inputs=(LABEL,))}

    def export_assets(self) -> dict[str, bytes]:
        if not self.num_classes:
            return {}
        classes = {"classes": [{"name": name} for name in self.config.classes]}
        return {CLASSES_ASSET: (json.dumps(classes, indent=1) + "\n").encode()}
