"""Feature nets for the feature-space metrics; nothing here downloads anything.

- `digits`: genart's own small CNN, trained on MNIST by scripts/train_digits_net.py; its weights ship in
  trainer/evaluate/weights/. Features: the 128-d penultimate layer; it also gives 10 class probabilities (IS).
- `inception`: Keras InceptionV3, include_top=False, global average pool (2048-d, "pool3"), weights from a
  file the user gives. No classifier head, so no Inception Score.
"""
from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from trainer.evaluate import digits
from trainer.evaluate import images as img

DIGITS_WEIGHTS = "weights/digits.weights.h5"  # package data of trainer.evaluate
DIGITS_FEATURES = 128
INCEPTION_SIZE = 299      # the size InceptionV3's FID statistics are computed at
INCEPTION_MIN_SIZE = 75   # the smallest input Keras' InceptionV3 accepts
INCEPTION_FEATURES = 2048


@dataclasses.dataclass
class Features:
    features: np.ndarray                # (n, d) float64: for KID, FD, precision / recall
    probs: np.ndarray | None = None     # (n, classes) float64 class probabilities, or None: for IS


@dataclasses.dataclass
class FeatureNet:
    """A Keras model plus the one conversion of images to its input."""
    name: str
    model: object                       # keras.Model: images -> features, or -> [features, probs]
    to_input: Callable[..., np.ndarray]  # (images, value_range) -> the model's input batch
    has_classifier: bool

    def __call__(self, images, value_range: tuple[float, float] | None = None, batch_size: int = 200) -> Features:
        """Features (and class probabilities) of images (n, h, w[, c]) of any size, colour and range."""
        images = img.as_batch(images)
        feats, probs = [], []
        for start in range(0, len(images), batch_size):
            out = self.model(self.to_input(images[start:start + batch_size], value_range), training=False)
            if self.has_classifier:
                feats.append(np.asarray(out[0], np.float64))
                probs.append(np.asarray(out[1], np.float64))
            else:
                feats.append(np.asarray(out, np.float64))
        if not feats:
            raise ValueError("no images to compute features of")
        return Features(np.concatenate(feats), np.concatenate(probs) if probs else None)


def build_digits_classifier():
    """The digits CNN (157k weights): three conv stages -> global average pool -> 'features' (128, ReLU) ->
    dropout -> 'probs' (10, softmax). Input (28, 28, 1) in [0, 1], white digit on black."""
    import keras
    from keras import layers

    def conv(h, filters, name):
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(h)
        return layers.ReLU(name=f"{name}_relu")(layers.BatchNormalization(name=f"{name}_bn")(h))

    inputs = keras.Input((digits.SIZE, digits.SIZE, 1), name="digits")
    h = conv(conv(inputs, 32, "c1a"), 32, "c1b")
    h = layers.MaxPool2D(name="pool1")(h)
    h = conv(conv(h, 64, "c2a"), 64, "c2b")
    h = layers.MaxPool2D(name="pool2")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(conv(h, 128, "c3"))
    features = layers.Dense(DIGITS_FEATURES, activation="relu", name="features")(h)
    probs = layers.Dense(digits.CLASSES, activation="softmax", name="probs")(
        layers.Dropout(0.3, name="dropout")(features))
    return keras.Model(inputs, probs, name="digits_classifier")


def default_digits_weights() -> Path:
    return Path(str(resources.files("trainer.evaluate").joinpath(DIGITS_WEIGHTS)))


def digits_net(weights: str | Path | None = None) -> FeatureNet:
    """The digits feature net with genart's shipped weights (or the given file)."""
    import keras

    path = Path(weights) if weights is not None else default_digits_weights()
    if not path.is_file():
        raise FileNotFoundError(f"no digits weights at {path}: run scripts/train_digits_net.py")
    classifier = build_digits_classifier()
    classifier.load_weights(str(path))
    model = keras.Model(classifier.input, [classifier.get_layer("features").output, classifier.output])
    return FeatureNet("digits", model, digits.to_digits_input, has_classifier=True)


def build_inception(input_size: int = INCEPTION_SIZE):
    """Keras InceptionV3 without top, average-pooled to 2048-d, randomly initialised (weights=None)."""
    import keras

    if input_size < INCEPTION_MIN_SIZE:
        raise ValueError(f"InceptionV3 needs inputs of at least {INCEPTION_MIN_SIZE}x{INCEPTION_MIN_SIZE}")
    return keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                          input_shape=(input_size, input_size, 3))


def to_inception_input(images, value_range=None, input_size: int = INCEPTION_SIZE) -> np.ndarray:
    """RGB (grey repeated), resized with antialiasing, scaled to [-1, 1] (keras' inception_v3.preprocess_input)."""
    x = img.resize(img.to_rgb(img.to_unit_float(images, value_range)), input_size)
    return x * 2.0 - 1.0


def inception_net(weights: str | Path, input_size: int = INCEPTION_SIZE) -> FeatureNet:
    """InceptionV3 pool3 features with weights from `weights` (a Keras .weights.h5, or a legacy Keras .h5 such
    as the 'notop' file of keras.applications): never downloaded here."""
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"no Inception weights at {path} (give --inception-weights FILE)")
    model = build_inception(input_size)
    model.load_weights(str(path))
    return FeatureNet("inception", model, lambda x, vr=None: to_inception_input(x, vr, input_size),
                      has_classifier=False)


def load_feature_net(name: str, inception_weights: str | Path | None = None,
                     inception_size: int = INCEPTION_SIZE) -> FeatureNet:
    """'digits' or 'inception' (which needs `inception_weights`)."""
    if name == "digits":
        return digits_net()
    if name == "inception":
        if inception_weights is None:
            raise ValueError("the inception feature net needs a weights file (--inception-weights FILE)")
        return inception_net(inception_weights, inception_size)
    raise ValueError(f"unknown feature net {name!r}; one of digits, inception")
