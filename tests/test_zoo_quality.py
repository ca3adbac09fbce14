"""Fast versions of the zoo's quality figures (issue 14) on MNIST digits shipped in a package, with the bench's
own code (`bench/zoo_quality.py`): a DCGAN's kid_digits falls at least 5x from step 0, and a cgan paints the asked
class, and a WGAN-GP does not diverge. The fast cgan check asks for 3x chance (30%) after a short run; the issue's
80% is the bench's figure at equal CPU time (README). Budgets are step counts (seeded, so the result
does not depend on the machine's speed), a few tens of CPU seconds each."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from conftest import REPO_ROOT

DCGAN_STEPS, CGAN_STEPS, WGAN_GP_STEPS = 1200, 2400, 100  # a WGAN-GP step holds 5 critic updates
SAMPLES = 500


def train(model, data_dir: str, steps: int) -> bool:
    """`steps` train steps; whether every loss stayed finite."""
    import tensorflow as tf

    iterator = iter(model.make_train_dataset(data_dir, model.config.batch_size))
    step_fn = tf.function(model.train_step)
    losses = [step_fn(next(iterator)) for _ in range(steps)]
    return all(np.isfinite(float(value)) for step in losses[-50:] for value in step.values())


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("zoo_quality", os.path.join(REPO_ROOT, "bench", "zoo_quality.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digits(bench, tmp_path_factory):
    """(bench options, the 4,000 training digits as a 32 px data dir, the digits net, held-out features)."""
    from trainer.evaluate.digits import load_split
    from trainer.evaluate.features import digits_net

    args = bench.parse_args(["--filters", "8", "--batch-size", "32", "--samples", str(SAMPLES)])
    net = digits_net()
    return args, bench.write_digits(str(tmp_path_factory.mktemp("digits")), None, 32), net, \
        net(load_split("test")[0][:SAMPLES]).features


def test_dcgan_kid_falls_five_fold(bench, digits):
    args, data_dir, net, real = digits
    import keras

    keras.utils.set_random_seed(0)
    model = bench.make_model(args, data_dir, "dcgan", "dcgan", "none")
    before = bench.kid_digits(net, real, bench.samples(model, SAMPLES))
    finite = train(model, data_dir, DCGAN_STEPS)
    after = bench.kid_digits(net, real, bench.samples(model, SAMPLES))
    assert finite and before / max(after, 1e-9) >= 5.0, (before, after)


def test_cgan_paints_the_asked_class(bench, digits):
    args, data_dir, net, _ = digits
    import keras

    keras.utils.set_random_seed(0)
    model = bench.make_model(args, data_dir, "cgan", "cgan", "none")
    finite = train(model, data_dir, CGAN_STEPS)
    labels = np.arange(SAMPLES) % 10
    agreement = float(np.mean(net(bench.samples(model, SAMPLES, labels), (-1.0, 1.0)).probs.argmax(1) == labels))
    assert finite and agreement >= 0.3, agreement  # chance: 0.1


def test_wgan_gp_does_not_diverge(bench, digits):
    import keras

    args, data_dir, _, _ = digits
    keras.utils.set_random_seed(0)
    model = bench.make_model(args, data_dir, "dcgan", "wgan-gp", "none")
    assert train(model, data_dir, WGAN_GP_STEPS)  # every loss finite (the bench's longer run: kid falls 86x)
