"""The networks of text -> image (`trainer.models.text2image`), found by name through `trainer.choices.NETWORKS`:
- `hashed_text_encoder`: string [N] -> text code float32 [N, text_dim], entirely in the graph: the shared
  normaliser and tokeniser (`preprocess.text`), each word embedded as its hashed word bucket plus the mean of its
  hashed character trigrams (fastText-style: an unseen word still gets a code from its spelling), optionally
  plus a static word vector (`--word-vectors`, looked up by fingerprint in a sorted vocabulary held in
  variables, so no lookup table or asset is needed), words mean-pooled (no words: a zero code);
- `conditioning_augmentation`: text code -> (mu, log sigma) of the condition (StackGAN, Zhang et al. 2017);
- `text_generator`: [noise, condition] -> tanh RGB image, DCGAN's generator (`dcgan.dcgan_decoder`) on their
  concatenation;
- `matching_discriminator`: [image, text code] -> (match logit [N, 1], class logits [N, K] when K > 0): strided
  convs, the text code tiled over the 4x4 map (GAN-INT-CLS, Reed et al. 2016), and TAC-GAN's auxiliary
  classifier head on the image features (Dash et al. 2017).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from preprocess.text import tokenize
from trainer.networks.dcgan import KERNEL, SMALLEST_MAP, dcgan_decoder, stage_widths

NGRAM = 3
FINGERPRINT_RANGE = 2 ** 62  # word fingerprints for the static vocabulary (`to_hash_bucket_fast`, Fingerprint64)
LEAK = 0.2


def fingerprints(words) -> tf.Tensor:
    """string [...] -> int64 [...]: the words' stable fingerprints (the same in every process and platform)."""
    return tf.strings.to_hash_bucket_fast(words, FINGERPRINT_RANGE)


def _mean_rows(values: tf.Tensor, row_splits: tf.Tensor) -> tf.Tensor:
    """The mean of each ragged row of `values` (a zero vector for an empty row)."""
    ragged = tf.RaggedTensor.from_row_splits(values, row_splits)
    counts = tf.cast(tf.maximum(ragged.row_lengths(), 1), values.dtype)[:, None]
    return tf.reduce_sum(ragged, axis=1) / counts


class HashedTextEncoder(layers.Layer):
    """string [N] -> float32 [N, text_dim] (see the module docstring). `vocabulary_size` > 0: a static word table
    of `vector_dim`-d vectors (initial values from `set_word_vectors`) projected to text_dim and added."""

    def __init__(self, text_dim: int = 64, word_buckets: int = 2048, ngram_buckets: int = 2048,
                 vocabulary_size: int = 0, vector_dim: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.text_dim, self.word_buckets, self.ngram_buckets = text_dim, word_buckets, ngram_buckets
        self.words = self.add_weight(shape=[word_buckets, text_dim], initializer="random_normal", name="words")
        self.ngrams = self.add_weight(shape=[ngram_buckets, text_dim], initializer="random_normal", name="ngrams")
        self.vocabulary_size = vocabulary_size
        if vocabulary_size:
            self.vocabulary = self.add_weight(shape=[vocabulary_size], dtype="int64", initializer="zeros",
                                              trainable=False, name="vocabulary")
            self.vectors = self.add_weight(shape=[vocabulary_size, vector_dim], initializer="zeros", name="vectors")
            self.projection = self.add_weight(shape=[vector_dim, text_dim], initializer="glorot_uniform",
                                              name="projection")

    def set_word_vectors(self, words: list[str], vectors: np.ndarray) -> None:
        """Start the static table from `vectors` [len(words), vector_dim] (rows sorted by fingerprint here)."""
        keys = fingerprints(tf.constant(words)).numpy()
        order = np.argsort(keys)
        self.vocabulary.assign(keys[order])
        self.vectors.assign(np.asarray(vectors, np.float32)[order])

    def _static_vectors(self, tokens: tf.Tensor) -> tf.Tensor:
        keys = fingerprints(tokens)
        index = tf.minimum(tf.searchsorted(self.vocabulary, keys), self.vocabulary_size - 1)
        found = tf.equal(tf.gather(self.vocabulary, index), keys)
        vectors = tf.matmul(tf.gather(self.vectors, index), self.projection)
        return vectors * tf.cast(found, vectors.dtype)[:, None]

    def call(self, text):
        words = tokenize(tf.reshape(text, [-1]))
        tokens = words.flat_values
        marked = tf.strings.join(["<", tokens, ">"])
        trigrams = tf.strings.ngrams(tf.strings.unicode_split(marked, "UTF-8", errors="replace"), NGRAM,
                                     separator="")
        ngram_ids = tf.strings.to_hash_bucket_fast(trigrams.flat_values, self.ngram_buckets)
        vectors = tf.gather(self.words, tf.strings.to_hash_bucket_fast(tokens, self.word_buckets))
        vectors += _mean_rows(tf.gather(self.ngrams, ngram_ids), trigrams.row_splits)
        if self.vocabulary_size:
            vectors += self._static_vectors(tokens)
        return _mean_rows(vectors, words.row_splits)


def hashed_text_encoder(text_dim: int = 64, word_buckets: int = 2048, ngram_buckets: int = 2048,
                        vocabulary_size: int = 0, vector_dim: int = 0, name: str = "text_encoder",
                        **_) -> HashedTextEncoder:
    encoder = HashedTextEncoder(text_dim, word_buckets, ngram_buckets, vocabulary_size, vector_dim, name=name)
    encoder(tf.constant([""]))  # create the variables now (checkpoints restore into existing ones)
    return encoder


def conditioning_augmentation(text_dim: int = 64, condition_dim: int = 32, name: str = "conditioning",
                              **_) -> keras.Model:
    """text code -> (mu, log sigma) [N, condition_dim] each; the condition is mu + sigma * eps."""
    code = keras.Input([text_dim], name="text_code")
    x = layers.LeakyReLU(LEAK)(layers.Dense(2 * condition_dim)(code))
    mu, log_sigma = layers.Dense(condition_dim, name="mu")(x), layers.Dense(condition_dim, name="log_sigma")(x)
    return keras.Model(code, [mu, log_sigma], name=name)


def text_generator(image_size: int = 64, latent_dim: int = 100, condition_dim: int = 32, base_filters: int = 64,
                   name: str = "generator", **_) -> keras.Model:
    """[noise [N, latent_dim], condition [N, condition_dim]] -> tanh RGB float32 image."""
    noise, condition = keras.Input([latent_dim], name="noise"), keras.Input([condition_dim], name="condition")
    body = dcgan_decoder(image_size, latent_dim + condition_dim, base_filters, name=f"{name}_body")
    rgb = layers.Activation("linear", dtype="float32", name="rgb_float32")(
        body(layers.Concatenate()([noise, condition])))
    return keras.Model([noise, condition], rgb, name=name)


def matching_discriminator(image_size: int = 64, base_filters: int = 64, text_dim: int = 64, num_classes: int = 0,
                           name: str = "discriminator", **_) -> keras.Model:
    """[image, text code] -> [match logit [N, 1]] (+ [class logits [N, num_classes]] when num_classes > 0)."""
    images, code = keras.Input([image_size, image_size, 3], name="images"), keras.Input([text_dim], name="text_code")
    x = images
    widths = stage_widths(image_size, base_filters)
    for stage, width in enumerate(widths):
        x = layers.Conv2D(width, KERNEL, strides=2, padding="same", use_bias=not stage)(x)
        if stage:
            x = layers.LayerNormalization(axis=[1, 2, 3])(x)
        x = layers.LeakyReLU(LEAK)(x)
    text = layers.LeakyReLU(LEAK)(layers.Dense(min(text_dim, widths[-1]))(code))
    tiled = layers.Reshape([SMALLEST_MAP, SMALLEST_MAP, -1])(layers.RepeatVector(SMALLEST_MAP * SMALLEST_MAP)(text))
    joint = layers.LeakyReLU(LEAK)(layers.Conv2D(widths[-1], 1)(layers.Concatenate()([x, tiled])))
    outputs = [layers.Dense(1, dtype="float32", name="match")(layers.Flatten()(joint))]
    if num_classes:
        outputs.append(layers.Dense(num_classes, dtype="float32", name="classes")(layers.Flatten()(x)))
    return keras.Model([images, code], outputs, name=name)
