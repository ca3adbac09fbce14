"""Typed options (`trainer.config` + each model's config class): --help, JSON config keys, per-model defaults,
precedence, choices of networks and losses, and the config.json of older jobs."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT
from train_data import write_records

from artifacts import jobs
from trainer import choices, models
from trainer.sizing import Device
from trainer.config import default_text, flag_name
from trainer.task import main, resolve_config


def _write_json(path, obj) -> str:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


GPU = Device(cores=8, gpus=1)


def _resolve(tmp_path, config: dict | None = None, *flags: str):
    argv = ["--data-dir", "d", "--job-dir", str(tmp_path / "job"), *flags]
    if config is not None:
        argv += ["--config", _write_json(tmp_path / "config.json", config)]
    return resolve_config(argv, device=GPU)  # the INTERFACE defaults, not those picked for a CPU (test_first_picture)


# ---------------------------------------------------------------- --help


def help_entries() -> dict[str, str]:
    """{flag: its --help entry, whitespace normalised}, from a real `python -m trainer.task --help`."""
    result = subprocess.run([sys.executable, "-m", "trainer.task", "--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    entries = re.findall(r"^  (--[a-z0-9-]+)(.*?)(?=^  --|^\S|\Z)", result.stdout, re.MULTILINE | re.DOTALL)
    return {flag: " ".join(text.split()) for flag, text in entries}


def test_help_lists_every_option_of_every_model_with_its_default():
    entries = help_entries()
    for model, config_class in models.config_classes().items():
        for key in config_class.keys():
            field = config_class.field(key)
            if not field.metadata["flag"]:
                continue
            assert flag_name(key) in entries, f"{model}: {flag_name(key)} missing from --help"
            assert default_text(field) in entries[flag_name(key)], (model, key, entries[flag_name(key)])
    # a model's own default for a common option (and the VAE-GAN's sizes picked on a CPU: trainer/sizing.py)
    assert "(default: 64 (a GPU's); vaegan on a CPU: picked, 16 to 32; cyclegan: 1; spade: 8)" in entries["--batch-size"]
    assert "(default: 50)" in entries["--pool-size"] and "(default: 10)" in entries["--recon-weight"]
    assert "vaegan: non_saturating; cyclegan: lsgan" in entries["--gan-loss"]
    assert "{non_saturating,lsgan}" in entries["--gan-loss"]
    assert "--center-crop" not in entries  # from the data's manifest, not a flag


# ---------------------------------------------------------------- config keys


def test_an_unknown_config_key_is_refused_listing_the_known_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown configuration key.*'pool_sise'") as refused:
        _resolve(tmp_path, {"model": "cyclegan", "pool_sise": 10})
    known = str(refused.value).split("knows: ")[1].split(", ")
    assert known == sorted(models.config_class("cyclegan").keys()) and "pool_size" in known
    assert str(tmp_path / "config.json") in str(refused.value)  # which file


def test_a_key_of_another_model_is_refused_naming_that_model(tmp_path):
    with pytest.raises(ValueError, match="'pool_size' is an option of cyclegan, not of vaegan"):
        _resolve(tmp_path, {"model": "vaegan", "pool_size": 10})
    with pytest.raises(ValueError, match="--recon-weight is an option of vaegan, not of cyclegan"):
        _resolve(tmp_path, None, "--model", "cyclegan", "--recon-weight", "5")


def test_config_values_must_have_their_options_type(tmp_path):
    with pytest.raises(ValueError, match="'batch_size' must be an integer, got \"8\""):
        _resolve(tmp_path, {"batch_size": "8"})
    with pytest.raises(ValueError, match="'recon_weight' must be a number, got true"):
        _resolve(tmp_path, {"recon_weight": True})
    config = _resolve(tmp_path, {"model": "cyclegan", "learning_rate": 1, "n_blocks": None, "max_steps": 2e3})
    assert (config.learning_rate, config.n_blocks, config.max_steps) == (1.0, None, 2000)
    assert isinstance(config.learning_rate, float) and isinstance(config.max_steps, int)


def test_a_model_may_set_its_own_default_for_a_common_option(tmp_path):
    assert _resolve(tmp_path).batch_size == 64
    assert _resolve(tmp_path, None, "--model", "cyclegan").batch_size == 1  # as in the CycleGAN paper
    assert _resolve(tmp_path, {"model": "cyclegan"}).batch_size == 1
    assert _resolve(tmp_path, {"model": "cyclegan", "batch_size": 4}).batch_size == 4


def test_flags_override_the_config_file_for_every_option(tmp_path):
    config = _resolve(tmp_path, {"model": "cyclegan", "pool_size": 10, "cycle_weight": 5, "seed": 3},
                      "--pool-size", "3", "--gan-loss", "non_saturating", "--jit-compile", "false")
    assert (config.pool_size, config.cycle_weight, config.seed) == (3, 5.0, 3)
    assert (config.gan_loss, config.jit_compile) == ("non_saturating", False)
    config = _resolve(tmp_path, {"recon_weight": 5, "kl_weight": 0.5}, "--kl-weight", "0.25")
    assert (config.model, config.recon_weight, config.kl_weight) == ("vaegan", 5.0, 0.25)


def test_the_saved_config_json_is_flat_and_reads_back_the_same(tmp_path):
    config = _resolve(tmp_path, {"model": "cyclegan", "pool_size": 7})
    saved = json.loads(config.to_json())
    assert list(saved) == models.config_class("cyclegan").keys() and "extra" not in saved
    assert models.config_from_saved(saved) == config


# ---------------------------------------------------------------- network and loss choices


def test_network_and_loss_choices_are_checked_before_tensorflow_is_imported(tmp_path):
    bad = _write_json(tmp_path / "bad.json", {"model": "cyclegan", "discriminator": "dcgan_discriminator"})
    code = ("import sys; from trainer import task\n"
            f"assert task.main(['--data-dir', 'd', '--job-dir', 'j', '--config', {bad!r}]) == 2\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--discriminator must be one of patchgan_discriminator" in result.stderr
    with pytest.raises(ValueError, match="--gan-loss must be one of non_saturating, lsgan for vaegan, got 'wgan'"):
        _resolve(tmp_path, {"gan_loss": "wgan"})


def test_each_network_choice_plays_its_role():
    vaegan, cyclegan = models.config_class("vaegan"), models.config_class("cyclegan")
    assert vaegan.field("encoder").metadata["choices"] == choices.network_names(choices.ENCODER)
    assert cyclegan.field("discriminator").metadata["choices"] == ("patchgan_discriminator",)
    assert set(choices.network_names()) == set(choices.NETWORKS)


# ---------------------------------------------------------------- jobs written by an older genart

OLD_VAEGAN_CONFIG = {  # a VAE-GAN job's config.json as written before typed options: CycleGAN fields, `extra`
    "data_dir": "d", "job_dir": "j", "model": "vaegan", "config": None, "image_size": 32, "batch_size": 4,
    "max_steps": 2, "latent_dim": 6, "base_filters": 4, "learning_rate": 0.0002, "beta1": 0.5,
    "checkpoint_every_steps": 500, "summary_every_steps": 100, "sample_every_steps": 500, "seed": 0,
    "strategy": "auto", "n_blocks": None, "cycle_weight": 10.0, "identity_weight": 0.5, "pool_size": 50,
    "center_crop": True, "extra": {"recon_weight": 5, "kl_weight": 0.01, "jit_compile": False},
}


def test_an_old_config_json_with_extra_and_cyclegan_fields_is_read(tmp_path):
    job = tmp_path / "job"
    _write_json(job / "config.json", {**OLD_VAEGAN_CONFIG, "job_dir": str(job)})
    config = resolve_config(["--data-dir", "d", "--job-dir", str(job), "--max-steps", "3"])
    assert (config.model, config.recon_weight, config.kl_weight, config.jit_compile) == ("vaegan", 5, 0.01, False)
    assert (config.batch_size, config.image_size, config.max_steps) == (4, 32, 3)
    assert models.config_from_saved(OLD_VAEGAN_CONFIG).recon_weight == 5.0  # what `trainer.export` reads
    old_cyclegan = {k: v for k, v in OLD_VAEGAN_CONFIG.items() if k != "extra"} | {"model": "cyclegan", "extra": {}}
    assert models.config_from_saved(old_cyclegan).batch_size == 4  # saved values win over the model's defaults


def test_a_user_config_with_extra_is_still_accepted_and_its_keys_checked(tmp_path):
    assert _resolve(tmp_path, {"extra": {"recon_weight": 5}}).recon_weight == 5.0
    with pytest.raises(ValueError, match="'pool_size' is an option of cyclegan"):
        _resolve(tmp_path, {"extra": {"pool_size": 5}})


def test_a_job_with_an_old_config_json_resumes_from_its_checkpoint(tmp_path):
    """A job trained for 2 steps whose config.json is then rewritten in the old format resumes at step 2."""
    data, job = write_records(str(tmp_path / "data"), n_train=8, n_val=0), str(tmp_path / "old_job")
    flags = ["--data-dir", data, "--job-dir", job]
    tiny = ["--image-size", "32", "--base-filters", "4", "--latent-dim", "6", "--batch-size", "4",
            "--max-steps", "2", "--recon-weight", "5"]
    assert main(flags + tiny) == 0
    _write_json(jobs.config_path(job), {**OLD_VAEGAN_CONFIG, "data_dir": data, "job_dir": job})
    log = io.StringIO()
    from trainer import loop

    result = loop.train(resolve_config(flags + ["--max-steps", "3"]), stream=log)
    assert (result.state, result.step) == ("SUCCEEDED", 3) and "at step 2" in log.getvalue()
    saved = json.loads(open(jobs.config_path(job)).read())
    assert "extra" not in saved and "pool_size" not in saved and saved["recon_weight"] == 5


# ---------------------------------------------------------------- with TensorFlow: the registries behind the names


def test_the_names_are_those_of_the_registries():
    import importlib

    from trainer import losses

    assert set(losses.GAN_LOSSES) == set(choices.GAN_LOSSES) | set(choices.ZOO_LOSSES.values())
    for name, network in choices.NETWORKS.items():
        module, function = network.builder.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name


@pytest.mark.parametrize("model, gan_loss, own_options, batch", [
    ("vaegan", choices.LSGAN, {}, lambda images: images),
    ("cyclegan", choices.NON_SATURATING, {"n_blocks": 1}, lambda images: (images, images)),
], ids=["vaegan", "cyclegan"])
def test_a_model_trains_with_the_gan_loss_it_is_given(model, gan_loss, own_options, batch):
    import numpy as np
    import tensorflow as tf

    from trainer import losses

    config = models.config_class(model)(image_size=32, base_filters=2, latent_dim=4, batch_size=2,
                                        gan_loss=gan_loss, **own_options).validate()
    instance = models.model_class(model)(config)
    instance.build_for_training()
    assert (instance.discriminator_loss, instance.generator_loss) == losses.GAN_LOSSES[gan_loss]
    step_losses = tf.function(instance.train_step)(batch(tf.random.uniform([2, 32, 32, 3], -1, 1)))
    assert all(np.isfinite(float(value)) for value in step_losses.values())


def test_step_seeds_follow_seed_step_and_nothing_else():
    import numpy as np

    from trainer.models.base import step_seeds

    first, again, later = step_seeds(0, 5), step_seeds(0, 5), step_seeds(0, 6)
    assert len(first) == 2 and not np.array_equal(first[0], first[1])
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(np.stack(first), np.stack(later))
    assert not np.array_equal(np.stack(first), np.stack(step_seeds(1, 5)))
    assert len(step_seeds(0, 5, count=3)) == 3
