"""The CycleGAN model (`trainer/models/cyclegan.py`): its `GenerativeModel` contract, one step, and that a tiny model,
trained through the shared loop and exported, learns an unpaired colour mapping.

(Resume, Ctrl-C and non-finite losses are the shared loop's tests, run for "cyclegan" via `train_data.MODELS`.)
"""
from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_data import write_unpaired_data
from saved_model_tools import call, decode_png, encode_image
from trainer.models.cyclegan import FIXED_IMAGES_PER_DOMAIN, CycleGAN
from trainer.models.cyclegan_config import CycleGANConfig

SIZE = 32


def tiny_config(**overrides) -> CycleGANConfig:
    values = dict(image_size=SIZE, base_filters=4, n_blocks=1, batch_size=2, max_steps=10,
                  pool_size=3, center_crop=True)
    values.update(overrides)
    return CycleGANConfig(**values).validate()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("unpaired"))
    write_unpaired_data(root, train=8, val=6)
    return root


def built(config: CycleGANConfig) -> CycleGAN:
    keras.utils.set_random_seed(config.seed)
    model = CycleGAN(config)
    model.build_for_training()
    return model


def test_model_follows_the_generative_model_contract(data_dir):
    model = built(tiny_config())
    a, b = next(iter(model.make_train_dataset(data_dir, 2)))
    assert a.shape == b.shape == (2, SIZE, SIZE, 3)

    fixed = model.fixed_batch(data_dir)
    assert [x.shape for x in fixed] == [(FIXED_IMAGES_PER_DOMAIN, SIZE, SIZE, 3)] * 2
    grids = model.sample_grids(fixed)
    assert set(grids) == {"a_to_b_to_a", "b_to_a_to_b"}
    for grid in grids.values():  # one row per fixed image: real, translated, translated back
        assert grid.shape == (FIXED_IMAGES_PER_DOMAIN * SIZE, 3 * SIZE, 3) and grid.dtype == tf.uint8
    np.testing.assert_array_equal(grids["a_to_b_to_a"][:SIZE, :SIZE], tf.cast(tf.round((fixed[0][0] + 1) * 127.5),
                                                                               tf.uint8))
    assert set(model.validation_metrics(fixed)) == {"val_cycle_l1_a", "val_cycle_l1_b"}

    assert set(model.checkpoint_items()) == {"g_ab", "g_ba", "d_a", "d_b", "g_optimizer", "d_optimizer",
                                             "pool_a", "pool_b"}
    default, specs = model.export_spec()
    assert default == "a_to_b" and set(specs) == {"a_to_b", "b_to_a"}
    assert specs["a_to_b"].networks == [model.g_ab] and specs["b_to_a"].networks == [model.g_ba]
    for spec in specs.values():
        assert (spec.input, spec.output) == ("image_bytes", "image_bytes")
        assert spec.fn(fixed[0]).shape == (FIXED_IMAGES_PER_DOMAIN, SIZE, SIZE, 3)


def test_one_step_updates_both_generators_and_both_discriminators_once(data_dir):
    model = built(tiny_config())
    networks = {name: model.checkpoint_items()[name] for name in ("g_ab", "g_ba", "d_a", "d_b")}
    before = {name: [w.numpy().copy() for w in net.trainable_weights] for name, net in networks.items()}
    batch = next(iter(model.make_train_dataset(data_dir, 2)))

    losses = model.train_step(batch)  # eagerly: the loop tests and the learning test run it as a graph

    assert set(losses) == {"g_loss", "g_adversarial", "cycle", "identity", "d_loss", "d_a", "d_b"}
    assert all(np.isfinite(float(v)) for v in losses.values())
    for name, net in networks.items():
        assert any(not np.array_equal(old, new.numpy()) for old, new in zip(before[name], net.trainable_weights)), name
    assert int(model.g_optimizer.iterations.numpy()) == int(model.d_optimizer.iterations.numpy()) == 1
    assert int(model.pool_a.count.numpy()) == int(model.pool_b.count.numpy()) == 2


def test_data_without_the_two_domains_is_a_clear_error(tmp_path):
    model = CycleGAN(tiny_config())
    with pytest.raises(FileNotFoundError, match="trainA/ and trainB/"):
        model.make_train_dataset(str(tmp_path), 2)


def test_a_tiny_cyclegan_learns_an_unpaired_colour_mapping(tmp_path):
    """B holds the colour negatives of other A-style images; after 200 steps through the loop, the exported
    `a_to_b` signature maps held-out A images to their negatives with under half the error it had at step 0
    (painting the mean B colour everywhere would only reach ~0.7 of it: the shapes must be followed)."""
    from trainer import loop

    data = write_unpaired_data(str(tmp_path / "data"), image_size=SIZE, train=64, val=16, seed=0)
    config = tiny_config(data_dir=str(tmp_path / "data"), job_dir=str(tmp_path / "learns"), base_filters=8,
                         batch_size=4, max_steps=200, learning_rate=1e-3, pool_size=50, seed=0,
                         checkpoint_every_steps=200, summary_every_steps=50, sample_every_steps=100,
                         strategy="default")
    a_images = data["a_val"].astype(np.float32) / 127.5 - 1.0
    truth = data["a_val_mapped"].astype(np.float32) / 127.5 - 1.0
    untrained_error = float(np.mean(np.abs(built(config).translate(a_images).numpy() - truth)))

    result = loop.train(config)
    assert (result.state, result.step) == ("SUCCEEDED", 200)
    assert os.path.exists(tmp_path / "learns" / "samples" / "step_0000200.png")
    assert result.metrics[200]["val_cycle_l1_a"] < result.metrics[0]["val_cycle_l1_a"]

    loaded = tf.saved_model.load(result.export_dir)
    served = call(loaded, "a_to_b", image_bytes=[encode_image(image) for image in data["a_val"]],
                  key=[str(i) for i in range(len(a_images))])
    translated = np.stack([decode_png(png) for png in served["image_bytes"]]).astype(np.float32) / 127.5 - 1.0
    error = float(np.mean(np.abs(translated - truth)))
    assert error < 0.5 * untrained_error, (error, untrained_error)
