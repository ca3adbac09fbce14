"""The VAE-GAN of Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric".

Owns the model's networks (by default those of `trainer/networks/dcgan.py`), its losses, its one `train_step`, its
data and sample grids, and its export signatures. Everything else (strategy, checkpoints, summaries, job.json) is
the shared loop's.

Losses, per example (reduced with `tf.nn.compute_average_loss` over the GLOBAL batch, so gradients are right
under tf.distribute, where the loop SUM-reduces them over replicas):
- `kl`: KL(q(z|x) || N(0, I)), summed over latent dimensions;
- `feature_recon`: the learned similarity: mean squared difference between the discriminator's intermediate
  features of x and of its reconstruction Dec(z), z ~ q(z|x) (reparameterised);
- GAN losses (`gan_loss`, non-saturating by default) on real images, reconstructions and prior samples Dec(z_p),
  z_p ~ N(0, I).
Updates (one each per step, Adam(learning_rate, beta1), no loss-threshold gating):
- encoder:       feature_recon + kl_weight * kl          (the feature-space ELBO, per feature)
- decoder:       recon_weight * feature_recon + GAN generator loss on reconstructions and samples  (gamma)
- discriminator: GAN discriminator loss (real vs. reconstructions and samples)
The discriminator features are divided by the per-channel standard deviation of the real ones (see `standardize`),
so `feature_recon` is a unit-variance Gaussian log-likelihood in feature space whatever the features' scale.
Options (`vaegan_config.py`): `kl_weight` defaults to KL_BETA / (number of feature elements): the feature-space
ELBO divided by its size, its KL term weighted by beta = KL_BETA (issue 19); `recon_weight` is Larsen's gamma
(default 10); `feature_stage` picks the discriminator stage; `encoder`, `decoder`, `discriminator` name the
networks and `gan_loss` the GAN loss. Prior samples and both export signatures go through the prior map
(`prior_map.py`: z ~ N(0, I) read as a sample of the training images' aggregate posterior), refitted at every
sample grid, checkpoint and export.

Speed (`fused_step`, default on): the networks' batch norms run TensorFlow's fused kernel (`networks/fused_norm.py`),
and the discriminator is called once per set (real, reconstructions, prior samples) instead of once on the three
stacked: the encoder's and decoder's backward passes then run over the rows they need only, not over zero
cotangents for the others (the discriminator has no batch statistics, so this is exact). Nothing more is shared:
each update differentiates its own loss with respect to its own network's variables, so every shared sub-graph
(discriminator, decoder) is crossed backwards with a different cotangent per update.

Randomness in `train_step` is stateless, seeded by (config.seed, step, replica) (`base.step_seeds`), so a resumed
run draws exactly the noise the uninterrupted run would have drawn, and no RNG state needs checkpointing.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from artifacts.dataset import train_files
from preprocess.records import make_dataset
from trainer import losses, networks
from trainer.models.base import (EMBEDDINGS, IMAGE_BYTES, EvaluationSets, GenerativeModel, SignatureSpec,
                                 image_split_dataset, make_grid, step_seeds)
from trainer.models.prior_map import PriorMap
from trainer.models.vaegan_config import VAEGANConfig
from trainer.networks import fused_norm
from trainer.precision import scaled_optimizer

# The default KL weight, KL_BETA / feature size: a beta-weighted feature-space ELBO. At beta 1 the aggregate
# posterior drifts far off N(0, I); beta 10 keeps reconstructions faithful and the posteriors wide enough that the
# prior map's aggregate posterior (prior_map.py) covers the space between training images.
KL_BETA = 10.0
PRIOR_MAP = "prior_exemplars"  # its checkpoint item (older checkpoints hold a one-Gaussian "prior_map": refit)
SAMPLE_GRID_SIZE = 64      # prior samples in the 'samples' grid (8 x 8)
RECONSTRUCTION_COUNT = 16  # val images in the 'reconstructions' grid (rows of originals, rows of reconstructions)
GRID_COLUMNS = 8


def interleave_rows(originals: tf.Tensor, reconstructions: tf.Tensor, columns: int) -> tf.Tensor:
    """[N, H, W, 3] x 2 -> a row of `columns` originals, the row of their reconstructions, the next row, ...

    Only whole rows are kept (all N when N < columns, as one short row each).
    """
    n = int(originals.shape[0])
    columns = min(columns, n)
    n -= n % columns
    image_shape = list(originals.shape[1:])
    rows = tf.stack([tf.reshape(originals[:n], [-1, columns, *image_shape]),
                     tf.reshape(reconstructions[:n], [-1, columns, *image_shape])], axis=1)
    return tf.reshape(rows, [-1, *image_shape])


def standardize(real_features: tf.Tensor, other_features: tf.Tensor):
    """Both feature maps divided by the per-channel standard deviation of the real ones (no gradient through it).

    The learned similarity is a unit-variance Gaussian in feature space: without this, its weight against the KL
    term would follow whatever scale the discriminator's features happen to have (Larsen et al. get the same
    from BatchNorm in the discriminator).
    """
    _, variance = tf.nn.moments(real_features, axes=list(range(len(real_features.shape) - 1)))
    scale = tf.stop_gradient(tf.sqrt(variance + 1e-6))
    return real_features / scale, other_features / scale


class VAEGAN(GenerativeModel):
    def __init__(self, config: VAEGANConfig, **kwargs):
        super().__init__(config, name="vaegan", **kwargs)
        size, z, width = config.image_size, config.latent_dim, config.base_filters
        with fused_norm.kernels(config.fused_step):
            self.encoder = networks.build(config.encoder, image_size=size, latent_dim=z, base_filters=width,
                                          name="encoder")
            self.decoder = networks.build(config.decoder, image_size=size, latent_dim=z, base_filters=width,
                                          name="decoder")
            self.discriminator = networks.build(config.discriminator, image_size=size, base_filters=width,
                                                feature_stage=config.feature_stage, name="discriminator")
        feature_size = int(np.prod(self.discriminator.outputs[1].shape[1:]))
        self.kl_weight = KL_BETA / feature_size if config.kl_weight is None else config.kl_weight
        self.recon_weight = config.recon_weight
        self.discriminator_loss, self.generator_loss = losses.get_gan_losses(config.gan_loss)
        adam, precision = dict(learning_rate=config.learning_rate, beta_1=config.beta1), config.precision
        self.encoder_optimizer = scaled_optimizer(keras.optimizers.Adam(name="encoder_adam", **adam), precision)
        self.decoder_optimizer = scaled_optimizer(keras.optimizers.Adam(name="decoder_adam", **adam), precision)
        self.discriminator_optimizer = scaled_optimizer(keras.optimizers.Adam(name="discriminator_adam", **adam),
                                                        precision)
        # fitted by `fit_prior_map`; see prior_map.py
        self.prior_map = PriorMap(z, config.prior_exemplars, name="prior_map")
        self.prior_map_stats: dict[str, float] = {}
        noise = np.random.default_rng(config.seed).standard_normal([SAMPLE_GRID_SIZE, z]).astype(np.float32)
        self.sample_noise = self.add_weight(shape=noise.shape, initializer=keras.initializers.Constant(noise),
                                            trainable=False, name="sample_noise")

    # ---------------------------------------------------------------- data

    def make_train_dataset(self, data_dir: str, global_batch_size: int,
                           input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        files = train_files(data_dir)
        # seed=None: the op seeds follow the global seed, which the loop sets per (seed, resumed step).
        return make_dataset(files, self.config.image_size, self.config.center_crop, global_batch_size,
                            training=True, seed=None, input_context=input_context,
                            cache_mib=self.config.input_cache_mib)

    def fixed_batch(self, data_dir: str) -> tf.Tensor:
        """The first RECONSTRUCTION_COUNT val images (train images when there is no val split), center-cropped."""
        for split in ("val", "train"):
            dataset = image_split_dataset(data_dir, split, self.config.image_size, RECONSTRUCTION_COUNT)
            if dataset is not None:
                for images in dataset.take(1):
                    return images
        raise FileNotFoundError(f"no images in {data_dir} to draw sample grids from")

    # ---------------------------------------------------------------- the model

    def encode(self, images, training: bool = False):
        """(mean, log_variance) of q(z | images)."""
        return self.encoder(images, training=training)

    def decode(self, latents, training: bool = False):
        return self.decoder(latents, training=training)

    def encode_mean(self, images):
        """Deterministic embedding of images: the posterior mean (the `image_bytes` signature)."""
        mean, _ = self.encode(images, training=False)
        return mean

    def embed(self, images):
        """The `image_bytes` embedding: the posterior mean, in the prior space (`PriorMap.to_prior`)."""
        return self.prior_map.to_prior(self.encode_mean(images))

    def generate(self, z):
        """The `embeddings` image: z in the prior space, decoded at the posterior it maps to."""
        return self.decode(self.prior_map.to_posterior(z), training=False)

    def fit_prior_map(self, data_dir: str) -> dict[str, float]:
        """Fit the prior map to the posteriors of (up to `prior_exemplars`) center-cropped training images."""
        means, variances, count, limit = [], [], 0, self.config.prior_exemplars
        dataset = self.evaluation_data(data_dir, "train", 256)
        for images in dataset if dataset is not None else ():
            mean, log_variance = self.encode(images, training=False)
            means.append(mean.numpy())
            variances.append(np.exp(log_variance.numpy()))
            count += len(means[-1])
            if count >= limit:
                break
        if means:
            self.prior_map_stats = self.prior_map.fit(np.concatenate(means)[:limit], np.concatenate(variances)[:limit])
        return self.prior_map_stats

    def refresh_sampling(self, data_dir: str) -> dict[str, float]:
        return self.fit_prior_map(data_dir)

    def derived_checkpoint_items(self) -> set[str]:
        return {PRIOR_MAP}  # jobs trained before the mixture map existed resume and export with a fresh fit

    def call(self, images, training: bool = False):
        """Reconstruction through the posterior mean (what `model(images)` means for an autoencoder)."""
        mean, _ = self.encode(images, training=training)
        return self.decode(mean, training=training)

    # ---------------------------------------------------------------- training

    def build_for_training(self) -> None:
        for optimizer, network in self._optimized_networks():
            optimizer.build(network.trainable_variables)

    def _optimized_networks(self):
        return ((self.encoder_optimizer, self.encoder), (self.decoder_optimizer, self.decoder),
                (self.discriminator_optimizer, self.discriminator))

    def checkpoint_items(self) -> dict:
        return {"encoder": self.encoder, "decoder": self.decoder, "discriminator": self.discriminator,
                "encoder_optimizer": self.encoder_optimizer, "decoder_optimizer": self.decoder_optimizer,
                "discriminator_optimizer": self.discriminator_optimizer, "sample_noise": self.sample_noise,
                PRIOR_MAP: self.prior_map}

    def learning_rates(self, step: int) -> dict[str, float]:
        return {name: float(self.config.learning_rate) for name in ("encoder", "decoder", "discriminator")}

    def train_step(self, images) -> dict:
        """One step: encoder, decoder and discriminator each updated once on this replica's share of the batch."""
        if isinstance(images, (tuple, list)):  # keras.Model.fit passes (x,) tuples
            images = images[0]
        batch = tf.shape(images)[0]
        noise_seed, prior_seed = step_seeds(self.config.seed, self.encoder_optimizer.iterations)
        latent_shape = tf.stack([batch, self.config.latent_dim])
        eps = tf.random.stateless_normal(latent_shape, seed=noise_seed)
        prior_latents = tf.random.stateless_normal(latent_shape, seed=prior_seed)

        def average(per_example):
            return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

        with tf.GradientTape(persistent=True) as tape:
            mean, log_variance = self.encode(images, training=True)
            latents = mean + tf.exp(0.5 * log_variance) * eps
            reconstructions, prior_images = tf.split(
                self.decode(tf.concat([latents, prior_latents], 0), training=True), 2)
            if self.config.fused_step:
                (real_logits, real_features), (recon_logits, recon_features), (prior_logits, _) = (
                    self.discriminator(x, training=True) for x in (images, reconstructions, prior_images))
            else:
                logits, features = self.discriminator(tf.concat([images, reconstructions, prior_images], 0),
                                                      training=True)
                real_logits, recon_logits, prior_logits = tf.split(logits, 3)
                real_features, recon_features, _ = tf.split(features, 3)

            kl = losses.kl_divergence(mean, log_variance)
            feature_recon = losses.l2(*standardize(tf.stop_gradient(real_features), recon_features))
            generator_gan = 0.5 * (self.generator_loss(recon_logits) + self.generator_loss(prior_logits))
            discriminator_gan = 0.5 * (self.discriminator_loss(real_logits, recon_logits)
                                       + self.discriminator_loss(real_logits, prior_logits))
            network_losses = {
                "encoder": average(feature_recon + self.kl_weight * kl),
                "decoder": average(self.recon_weight * feature_recon + generator_gan),
                "discriminator": average(discriminator_gan),
            }
            scaled = [optimizer.scale_loss(loss)  # loss scaling (mixed_float16), on the tape
                      for (optimizer, _), loss in zip(self._optimized_networks(), network_losses.values())]
        for (optimizer, network), loss in zip(self._optimized_networks(), scaled):
            variables = network.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        del tape
        return {**network_losses, "kl": average(kl), "feature_recon": average(feature_recon),
                "gan_generator": average(generator_gan)}

    # ---------------------------------------------------------------- summaries

    def reconstruct(self, images):
        return self(images, training=False)

    def sample_grids(self, fixed) -> dict[str, tf.Tensor]:
        samples = self.generate(tf.convert_to_tensor(self.sample_noise))
        reconstructions = self.reconstruct(fixed)
        return {"samples": make_grid(samples, GRID_COLUMNS),
                "reconstructions": make_grid(interleave_rows(fixed, reconstructions, GRID_COLUMNS),
                                              min(GRID_COLUMNS, int(fixed.shape[0])))}

    def validation_metrics(self, fixed) -> dict[str, float]:
        """Pixel-space mean squared reconstruction error of the fixed val batch (images in [-1, 1])."""
        return {"val_reconstruction_mse": float(tf.reduce_mean(tf.square(self.reconstruct(fixed) - fixed)))}

    def evaluation_sets(self, real_batch, seed, samples_only: bool = False) -> EvaluationSets:
        """Prior samples `generate(z)`, z ~ N(0, I) (as many as the batch has images), compared with the split's
        images; and the batch's reconstructions through the posterior mean."""
        latents = tf.random.stateless_normal([tf.shape(real_batch)[0], self.config.latent_dim], seed=seed)
        sets = EvaluationSets(real={"images": real_batch},
                              samples={"samples": ("images", self.generate(latents))})
        if not samples_only:
            sets.reconstructions["reconstructions"] = ("images", self.reconstruct(real_batch))
        return sets

    # ---------------------------------------------------------------- export

    def export_spec(self) -> tuple[str, dict[str, SignatureSpec]]:
        return EMBEDDINGS, {
            EMBEDDINGS: SignatureSpec(input=EMBEDDINGS, output=IMAGE_BYTES, fn=self.generate,
                                      networks=[self.prior_map, self.decoder]),
            IMAGE_BYTES: SignatureSpec(input=IMAGE_BYTES, output=EMBEDDINGS, fn=self.embed,
                                       networks=[self.prior_map, self.encoder]),
        }
