"""trainer.evaluate feature nets: the shipped digits CNN (loaded, never trained here), the one image conversion,
KID's ordering of real / blurred / collapsed / noise digits, and InceptionV3 from a user's weights file."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.evaluate import digits, features, metrics


@pytest.fixture(scope="module")
def net():
    return features.digits_net()


@pytest.fixture(scope="module")
def held_out():
    return digits.load_split("test")


def test_mnist_subset_and_split():
    images, labels = digits.load_mnist()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and images.max() == 255
    assert np.bincount(labels).tolist() == [500] * 10
    train, test = digits.split_indices(labels)
    assert len(train) == 4000 and len(test) == 1000 and not set(train) & set(test)


def test_digits_input_conversion(held_out):
    x = held_out[0][:20]
    assert np.array_equal(digits.to_digits_input(x), (x / 255.0).astype(np.float32)[..., None])
    # The same digits as a 56x56 dark-on-light RGBA picture, and as floats in [-1, 1], come back as the digits.
    light_rgba = np.repeat(np.kron(255 - x, np.ones((2, 2), np.uint8))[..., None], 4, axis=-1)
    assert np.abs(digits.to_digits_input(light_rgba) - x[..., None] / 255.0).mean() < 0.05
    back = digits.to_digits_input(x / 127.5 - 1.0, value_range=(-1.0, 1.0))
    assert np.allclose(back, x[..., None] / 255.0, atol=1e-6)
    with pytest.raises(ValueError):
        digits.to_digits_input(x.astype(np.int32))  # ambiguous range: must be given


def test_shipped_digits_net_accuracy_and_outputs(net, held_out):
    assert features.default_digits_weights().stat().st_size < 1_000_000
    x, y = held_out
    out = net(x)
    assert out.features.shape == (1000, features.DIGITS_FEATURES) and out.probs.shape == (1000, 10)
    assert np.allclose(out.probs.sum(1), 1.0, atol=1e-5)
    accuracy = (out.probs.argmax(1) == y).mean()
    assert accuracy >= 0.98, accuracy
    # Any colour and size goes through the one documented conversion: big RGB dark-on-light digits still read.
    rgb_light = np.repeat(np.kron(255 - x, np.ones((3, 3), np.uint8))[..., None], 3, axis=-1)
    assert (net(rgb_light).probs.argmax(1) == y).mean() >= 0.95


def blur(x, sigma=1.5):
    taps = metrics.gaussian_window(9, sigma)
    x = np.pad(x.astype(np.float64), ((0, 0), (4, 4), (4, 4)))
    x = sum(t * x[:, i:i + x.shape[1] - 8] for i, t in enumerate(taps))
    return sum(t * x[:, :, i:i + x.shape[2] - 8] for i, t in enumerate(taps)).astype(np.uint8)


def test_kid_orders_real_blurred_collapsed_noise(net, held_out):
    """real' < blurred, real' < collapsed (a digit's KID to real grows with how much of the data's spread and
    detail is lost); blurred < noise and collapsed < noise (noise is no digit at all)."""
    x = held_out[0]
    real, other = x[::2], x[1::2]
    sets = {"real'": other, "blurred": blur(other), "collapsed": np.repeat(other[:1], len(other), axis=0),
            "noise": np.random.default_rng(0).integers(0, 256, other.shape, dtype=np.uint8)}
    reference = net(real).features
    kid = {name: metrics.kid(reference, net(s).features, n_subsets=20, subset_size=250) for name, s in sets.items()}
    print({name: round(value, 4) for name, value in kid.items()})
    assert abs(kid["real'"]) < 0.1 * min(kid["blurred"], kid["collapsed"])
    assert kid["real'"] < kid["blurred"] < kid["noise"]
    assert kid["real'"] < kid["collapsed"] < kid["noise"]
    fd = {name: metrics.frechet_distance(reference, net(s).features) for name, s in sets.items()}
    assert fd["real'"] < min(fd["blurred"], fd["collapsed"]) and max(fd["blurred"], fd["collapsed"]) < fd["noise"]
    recall = {name: metrics.precision_recall(reference, net(s).features)[1] for name, s in sets.items()}
    assert recall["collapsed"] < 0.05 < 0.5 < recall["real'"]


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """A weights file from a randomly initialised 75x75 InceptionV3, as a user's file would be given."""
    import keras

    keras.utils.set_random_seed(0)
    model = features.build_inception(features.INCEPTION_MIN_SIZE)
    path = tmp_path_factory.mktemp("inception") / "random_notop.weights.h5"
    model.save_weights(str(path))
    return model, path


def test_inception_from_a_weights_file_never_downloads(random_inception, monkeypatch):
    import keras

    def no_download(*args, **kwargs):
        raise AssertionError("something tried to download")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    source, path = random_inception
    net = features.load_feature_net("inception", inception_weights=path, inception_size=features.INCEPTION_MIN_SIZE)
    assert net.name == "inception" and not net.has_classifier
    images = np.random.default_rng(0).integers(0, 256, (3, 40, 50), dtype=np.uint8)
    out = net(images, batch_size=2)
    assert out.features.shape == (3, features.INCEPTION_FEATURES) and out.probs is None
    expected = source(features.to_inception_input(images, input_size=features.INCEPTION_MIN_SIZE), training=False)
    assert np.allclose(out.features, np.asarray(expected), rtol=1e-4, atol=1e-5)


def test_inception_input_and_refusals(tmp_path):
    x = features.to_inception_input(np.zeros((1, 8, 8), np.uint8), input_size=80)
    assert x.shape == (1, 80, 80, 3) and np.all(x == -1.0)
    with pytest.raises(ValueError, match="weights file"):
        features.load_feature_net("inception")
    with pytest.raises(FileNotFoundError):
        features.load_feature_net("inception", inception_weights=tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="at least 75"):
        features.build_inception(64)
    with pytest.raises(ValueError, match="unknown feature net"):
        features.load_feature_net("vgg")
