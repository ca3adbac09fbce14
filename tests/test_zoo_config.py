"""Zoo configs: gan-toolkit's keys as they are, per-choice templates, the resolved config.json, refusals, and the
array / pickle data sources. TensorFlow-free (but for nothing)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

from preprocess import arrays
from trainer.models import toolkit
from trainer.task import resolve_config


def _config(tmp_path, values: dict, *flags: str):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    return resolve_config(["--config", str(path), "--data-dir", str(tmp_path / "data"),
                           "--job-dir", str(tmp_path / "job"), *flags])


def test_gan_toolkit_config_is_read_as_it_is(tmp_path):
    config = _config(tmp_path, {"generator": {"choice": "dcgan", "filters": 32, "latent_dim": 50},
                                "discriminator": {"choice": "gan", "layers": 2, "learning_rate": 1e-3},
                                "data_path": "my_images/", "metric_evaluate": "MMD"})
    assert (config.model, config.generator, config.discriminator) == ("gan", "dcgan", "gan")
    assert (config.generator_filters, config.latent_dim, config.discriminator_layers) == (32, 50, 2)
    assert config.discriminator_learning_rate == 1e-3 and config.generator_learning_rate == 2e-4
    assert config.metric_evaluate == ["mmd"] and config.data_path == "my_images/"
    assert (config.loss, config.optimizer, config.beta1, config.n_critic) == ("gan", "adam", 0.5, 1)
    saved = json.loads(config.to_json())  # what config.json holds: every setting resolved
    assert saved["discriminator_filters"] == 128 and saved["discriminator_norm"] == "none"


@pytest.mark.parametrize("choice, expected", [
    ("wgan", ("wasserstein", "rmsprop", 5e-5, 5, 0.01, "batch")),
    ("wgan-gp", ("wgan-gp", "adam", 1e-4, 5, 0.0, "layer")),
    ("dcgan", ("gan", "adam", 2e-4, 1, 0.0, "batch")),
])
def test_each_choice_brings_its_section_8_template(tmp_path, choice, expected):
    config = _config(tmp_path, {"generator": {"choice": "dcgan"}, "discriminator": {"choice": choice}})
    loss = "wasserstein" if config.loss == "wgan" else config.loss
    assert (loss, config.optimizer, config.learning_rate, config.n_critic, config.clip_value,
            config.discriminator_norm) == expected
    if choice == "wgan-gp":
        assert (config.beta1, config.beta2, config.gp_weight) == (0.0, 0.9, 10.0)


def test_loss_and_optimizer_keys_override_the_choice(tmp_path):
    config = _config(tmp_path, {"generator": "dcgan", "discriminator": "dcgan", "loss": "wgan-gp"})
    assert (config.optimizer, config.n_critic, config.discriminator_norm) == ("adam", 5, "layer")
    config = _config(tmp_path, {"generator": "dcgan", "discriminator": "wgan", "optimizer": "adam"},
                     "--n-critic", "2", "--augment", "translation,cutout", "--ema", "0.999")
    assert (config.loss, config.optimizer, config.learning_rate, config.n_critic) == ("wgan", "adam", 2e-4, 2)
    assert (config.augment, config.ema) == ("translation,cutout", 0.999)


@pytest.mark.parametrize("values, message", [
    ({"generator": {"choice": "cgan"}, "discriminator": {"choice": "dcgan"}}, "'cgan' and discriminator 'dcgan'"),
    ({"model": "vaegan", "generator": {"choice": "dcgan"}}, "both the model 'vaegan' and a zoo generator"),
    ({"generator": {"choice": "dcgan", "colour": 1}}, "unknown key(s) 'colour' in 'generator'"),
    ({"generator": {"choice": "biggan"}}, "--generator must be one of"),
    ({"generator": "dcgan", "augment": "flip"}, "unknown transform(s) flip"),
])
def test_bad_zoo_configs_are_refused_by_name(tmp_path, values, message):
    with pytest.raises(ValueError) as error:
        _config(tmp_path, values)
    assert message in str(error.value)


def test_non_zoo_configs_pass_through():
    assert toolkit.genart_values({"model": "cyclegan", "pool_size": 5}) == {"model": "cyclegan", "pool_size": 5}


def test_run_training_reads_the_model_and_data_path_of_a_zoo_config(tmp_path):
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps({"generator": {"choice": "wgan"}, "discriminator": {"choice": "wgan"},
                                "data_path": "my_images/"}))
    for command, expected in (("model-of", "gan"), ("data-path", "my_images/")):
        result = subprocess.run([sys.executable, "-m", "trainer.models", command, str(path)], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.stdout.strip() == expected, result.stderr


def test_arrays_are_normalised_and_pickles_refused(tmp_path):
    floats = np.random.default_rng(0).uniform(-1, 1, [5, 8, 8]).astype(np.float32)
    rgb = arrays.to_uint8_rgb(floats, "x")
    assert rgb.shape == (5, 8, 8, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], np.round((floats + 1) * 127.5).astype(np.uint8))
    np.testing.assert_array_equal(arrays.to_uint8_rgb(np.ones([1, 2, 2, 3]), "x"), 255)
    with pytest.raises(arrays.PreprocessError, match="in \\[0, 1\\] or \\[-1, 1\\]"):
        arrays.to_uint8_rgb(np.full([1, 2, 2], 3.0), "x")
    np.savez(tmp_path / "data.npz", digits=np.zeros([3, 4, 4], np.uint8), labels=np.array([0, 2, 1]))
    images, labels = arrays.load(str(tmp_path / "data.npz"))
    assert images.shape == (3, 4, 4) and arrays.check_labels(labels, 3, "x") == ["0", "1", "2"]
    (tmp_path / "data.pkl").write_bytes(b"not even read")
    with pytest.raises(arrays.PreprocessError, match="pickle.*np.savez.*--allow-pickle"):
        arrays.load(str(tmp_path / "data.pkl"))


def test_gan_toolkit_sample_config_with_its_own_spellings(tmp_path):
    """IBM gan-toolkit's configs/dcgan_wgan_gp.json plus sample_config4.json's settings, unchanged."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"image_size": 32, "center_crop": True,
                                                    "counts": {"train": 640, "val": 0}}))
    config = _config(tmp_path, {
        "result_path": "train_results/Comb/DCGAN/WGAN_GP", "save_model_path": "saved_models/Comb/DCGAN/WGAN_GP",
        "performance_log": "logs/Comb/DCGAN/WGAN_GP", "GAN_model": {"epochs": "50", "mini_batch_size": 64,
                                                                    "clip_value": -1, "lambda_gp": 10},
        "generator": {"choice": "dcgan", "loss": "Mean", "channels": 3,
                      "optimizer": {"choice": "Adam", "learning_rate": 0.0001, "b1": 0.0, "b2": 0.9}},
        "discriminator": {"choice": "wgan_gp", "input_shape": 28},
        "data_path": "datasets/dataset1.p", "metric_evaluate": "MMD"})
    assert (config.generator, config.discriminator, config.loss, config.optimizer) == (
        "dcgan", "wgan-gp", "wgan-gp", "adam")
    assert (config.generator_learning_rate, config.beta1, config.beta2, config.gp_weight) == (1e-4, 0.0, 0.9, 10)
    assert config.image_size == 32 and config.clip_value == 0.0 and config.batch_size == 64
    assert config.max_steps == 50 * 640 // (64 * 5)  # epochs over the data, n_critic batches a step


def test_every_example_config_resolves_and_has_its_readme_line(tmp_path):
    folder = os.path.join(REPO_ROOT, "examples", "configs")
    with open(os.path.join(REPO_ROOT, "examples", "README.md")) as f:
        readme = f.read()
    names = sorted(os.listdir(folder))
    assert len(names) >= 19
    for name in names:
        config = resolve_config(["--config", os.path.join(folder, name), "--data-dir", "d", "--job-dir", "j"])
        assert config.model == "gan" and os.path.isdir(os.path.join(REPO_ROOT, config.data_path)), name
        assert f"`{name}`" in readme, f"{name} has no line in examples/README.md"
