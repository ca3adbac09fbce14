"""Text -> image (INTERFACE.md section 12): a DCGAN generator on noise ⊕ a conditioning-augmented text code
(StackGAN, Zhang et al. 2017: c = mu + sigma * eps with a KL term), a matching-aware discriminator (GAN-INT-CLS,
Reed et al. 2016: a real image with a mismatched caption counts as fake) and, when the train captions are a
closed set (manifest `captions.closed_set`), TAC-GAN's auxiliary caption-class term (Dash et al. 2017).

Captions are encoded in the graph (`trainer.networks.text`); generator and discriminator each learn their own
encoder with their own loss. One step = one discriminator update, then one generator update, on the same batch.
The export's noise (and eps) is a deterministic function of (text, key): a stateless normal draw seeded by the
fingerprints of the two. Randomness in training is stateless from (seed, step, replica) (`base.step_seeds`).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from artifacts.dataset import split_files, train_files
from preprocess.records import make_dataset
from preprocess.text import normalize
from trainer import losses, networks
from trainer.models.base import IMAGE_BYTES, TEXT, EvaluationSets, GenerativeModel, SignatureSpec, make_grid, step_seeds
from trainer.models.text2image_config import Text2ImageConfig
from trainer.word_vectors import load_word_vectors

GRID_COLUMNS = 8
GRID_CAPTIONS = 8  # sample grids: up to 8 captions (val first), one per row, 8 noises each
KEY_SEPARATOR = "\x1f"


def binary_loss(logits, target: float) -> tf.Tensor:
    """Per-example sigmoid cross-entropy of logits [N, 1] against `target` (1: real and matching, 0: fake)."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), target), logits), axis=1)


def noise_for(text: tf.Tensor, key: tf.Tensor, size: int) -> tf.Tensor:
    """float32 [N, size]: a standard normal draw per row, a deterministic function of (text, key)."""
    joined = tf.strings.join([text, key], separator=KEY_SEPARATOR)
    seeds = tf.stack([tf.strings.to_hash_bucket_fast(joined, 2 ** 62),
                      tf.strings.to_hash_bucket_fast(tf.strings.join([joined, "noise"]), 2 ** 62)], axis=1)
    return tf.map_fn(lambda seed: tf.random.stateless_normal([size], seed=seed), seeds,
                     fn_output_signature=tf.TensorSpec([size], tf.float32))


class Text2Image(GenerativeModel):
    def __init__(self, config: Text2ImageConfig, **kwargs):
        super().__init__(config, name="text2image", **kwargs)
        self.num_classes = len(config.caption_classes) if config.class_weight else 0
        vectors = load_word_vectors(config) if config.word_vectors and not config.vocabulary_size else None
        if vectors is not None:
            config.vocabulary_size, config.vector_dim = len(vectors[0]), int(vectors[1].shape[1])
        encoder = dict(text_dim=config.text_dim, word_buckets=config.word_buckets,
                       ngram_buckets=config.ngram_buckets, vocabulary_size=config.vocabulary_size,
                       vector_dim=config.vector_dim)
        self.generator_encoder = networks.build("hashed_text_encoder", name="generator_text_encoder", **encoder)
        self.discriminator_encoder = networks.build("hashed_text_encoder", name="discriminator_text_encoder",
                                                    **encoder)
        if vectors is not None:
            for text_encoder in (self.generator_encoder, self.discriminator_encoder):
                text_encoder.set_word_vectors(*vectors)
        self.conditioning = networks.build("conditioning_augmentation", text_dim=config.text_dim,
                                           condition_dim=config.condition_dim)
        self.generator = networks.build("text_generator", image_size=config.image_size, latent_dim=config.latent_dim,
                                        condition_dim=config.condition_dim, base_filters=config.base_filters)
        self.discriminator = networks.build("matching_discriminator", image_size=config.image_size,
                                            base_filters=config.base_filters, text_dim=config.text_dim,
                                            num_classes=self.num_classes)
        self.generator_networks = [self.generator_encoder, self.conditioning, self.generator]
        self.discriminator_networks = [self.discriminator_encoder, self.discriminator]
        self.classes = tf.constant(config.caption_classes or [""], tf.string)
        self.generator_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1,
                                                         name="generator_adam")
        self.discriminator_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta1,
                                                             name="discriminator_adam")

    @staticmethod
    def _variables(nets) -> list:
        return [variable for net in nets for variable in net.trainable_variables]

    # ---------------------------------------------------------------- data

    def make_train_dataset(self, data_dir: str, global_batch_size: int,
                           input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
        """Batches of (images, captions as written)."""
        return make_dataset(train_files(data_dir), self.config.image_size, self.config.center_crop,
                            global_batch_size, training=True, captions=True, input_context=input_context)

    def _captions_of(self, data_dir: str, split: str) -> list[bytes]:
        files = split_files(data_dir, split)
        if not files:
            return []
        dataset = make_dataset(files, self.config.image_size, True, 256, training=False, drop_remainder=False,
                               captions=True)
        return [caption for _, captions in dataset for caption in captions.numpy().tolist()]

    def fixed_batch(self, data_dir: str):
        """Up to GRID_CAPTIONS distinct captions (val ones first: unseen prompts), each repeated GRID_COLUMNS times."""
        distinct = list(dict.fromkeys(self._captions_of(data_dir, "val") + self._captions_of(data_dir, "train")))
        chosen = distinct[:GRID_CAPTIONS] or [b""]
        return tf.constant(np.repeat(np.array(chosen, dtype=object), GRID_COLUMNS))

    def evaluation_data(self, data_dir: str, split: str, batch_size: int) -> tf.data.Dataset | None:
        files = split_files(data_dir, split)
        if not files:
            return None
        return make_dataset(files, self.config.image_size, True, batch_size, training=False, drop_remainder=False,
                            captions=True)

    def evaluation_sets(self, real_batch, seed, samples_only: bool = False) -> EvaluationSets:
        """Samples generated from the batch's own captions (the split's prompts)."""
        images, captions = real_batch
        images = tf.convert_to_tensor(images, tf.float32)
        noise = tf.random.stateless_normal(tf.stack([tf.shape(images)[0], self._noise_size()]), seed=seed)
        fake = self.generate(captions, noise)
        return EvaluationSets(real={"images": images}, samples={"samples": ("images", fake)})

    # ---------------------------------------------------------------- the networks

    def _noise_size(self) -> int:
        return self.config.latent_dim + self.config.condition_dim

    def condition(self, captions, eps, training: bool = False):
        """(condition c = mu + sigma * eps, per-example KL(N(mu, sigma²) || N(0, I)))."""
        mu, log_sigma = self.conditioning(self.generator_encoder(captions), training=training)
        return mu + tf.exp(log_sigma) * eps, losses.kl_divergence(mu, 2.0 * log_sigma)

    def generate(self, captions, noise, training: bool = False):
        """Images for `captions` [N] from `noise` [N, latent_dim + condition_dim] (z, then the condition's eps)."""
        z, eps = tf.split(noise, [self.config.latent_dim, self.config.condition_dim], axis=1)
        condition, _ = self.condition(captions, eps, training)
        return self.generator([z, condition], training=training)

    def _scores(self, images, code):
        outputs = self.discriminator([images, code], training=True)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return outputs[0], (outputs[1] if self.num_classes else None)

    def class_ids(self, captions) -> tf.Tensor:
        """int32 [N]: each caption's index in the closed set of train captions, -1 when it is not there."""
        matches = tf.equal(normalize(captions)[:, None], self.classes[None, :])
        return tf.where(tf.reduce_any(matches, axis=1), tf.argmax(tf.cast(matches, tf.int32), axis=1,
                                                                  output_type=tf.int32), -1)

    def _class_loss(self, logits, ids):
        if logits is None or not self.config.class_weight:
            return tf.zeros(tf.shape(ids), tf.float32)
        known = ids >= 0
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(ids, 0), logits)
        return self.config.class_weight * tf.where(known, per_example, 0.0)

    # ---------------------------------------------------------------- training

    def build_for_training(self) -> None:
        self.generator_optimizer.build(self._variables(self.generator_networks))
        self.discriminator_optimizer.build(self._variables(self.discriminator_networks))

    def checkpoint_items(self) -> dict:
        return {"generator": self.generator, "generator_text_encoder": self.generator_encoder,
                "conditioning": self.conditioning, "discriminator": self.discriminator,
                "discriminator_text_encoder": self.discriminator_encoder,
                "generator_optimizer": self.generator_optimizer,
                "discriminator_optimizer": self.discriminator_optimizer}

    def learning_rates(self, step: int) -> dict[str, float]:
        return {"generator": float(self.config.learning_rate), "discriminator": float(self.config.learning_rate)}

    def _average(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

    def train_step(self, batch) -> dict:
        config = self.config
        images, captions = batch
        size = tf.shape(images)[0]
        noise_seed, shift_seed = step_seeds(config.seed, self.generator_optimizer.iterations, 2)
        noise = tf.random.stateless_normal(tf.stack([size, self._noise_size()]), seed=noise_seed)
        shift = tf.random.stateless_uniform([], shift_seed, minval=1, maxval=tf.maximum(size, 2), dtype=tf.int32)
        wrong = tf.roll(captions, shift, axis=0)
        mismatched = tf.cast(tf.not_equal(normalize(wrong), normalize(captions)), tf.float32)
        ids = self.class_ids(captions)
        fake = self.generate(captions, noise, training=True)
        with tf.GradientTape() as tape:
            code = self.discriminator_encoder(captions)
            real_logit, real_classes = self._scores(images, code)
            fake_logit, fake_classes = self._scores(fake, code)
            wrong_logit, _ = self._scores(images, self.discriminator_encoder(wrong))
            fake_terms = ((1.0 - config.mismatch_weight) * binary_loss(fake_logit, 0.0)
                          + config.mismatch_weight * mismatched * binary_loss(wrong_logit, 0.0))
            per_example = (binary_loss(real_logit, 1.0) + fake_terms
                           + self._class_loss(real_classes, ids) + self._class_loss(fake_classes, ids))
            discriminator_loss = self._average(per_example)
        variables = self._variables(self.discriminator_networks)
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(discriminator_loss, variables), variables))
        with tf.GradientTape() as tape:
            z, eps = tf.split(noise, [config.latent_dim, config.condition_dim], axis=1)
            condition, kl = self.condition(captions, eps, training=True)
            fake = self.generator([z, condition], training=True)
            fake_logit, fake_classes = self._scores(fake, tf.stop_gradient(self.discriminator_encoder(captions)))
            per_example = binary_loss(fake_logit, 1.0) + config.kl_weight * kl + self._class_loss(fake_classes, ids)
            generator_loss = self._average(per_example)
        variables = self._variables(self.generator_networks)
        self.generator_optimizer.apply_gradients(zip(tape.gradient(generator_loss, variables), variables))
        return {"generator": generator_loss, "discriminator": discriminator_loss, "kl": self._average(kl)}

    # ---------------------------------------------------------------- summaries and export

    def sample_grids(self, fixed) -> dict[str, tf.Tensor]:
        keys = tf.strings.as_string(tf.range(tf.shape(fixed)[0]) % GRID_COLUMNS)
        return {"samples": make_grid(self.generate(fixed, noise_for(fixed, keys, self._noise_size())), GRID_COLUMNS)}

    def generate_for(self, text, key):
        """What the export's `text` signature computes: images for `text` [N] with noise from (text, key) [N]."""
        return self.generate(text, noise_for(text, key, self._noise_size()))

    def export_spec(self) -> tuple[str, dict[str, SignatureSpec]]:
        return TEXT, {TEXT: SignatureSpec(input=TEXT, output=IMAGE_BYTES, fn=self.generate_for,
                                          networks=self.generator_networks, takes_key=True)}
