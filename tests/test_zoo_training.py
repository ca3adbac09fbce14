"""Every zoo pairing trains through the shared loop and exports the section-8 signatures; cgan's labels come from
sub-folders or an .npz; a SIGKILLed wgan job resumes with its critic steps counted right. Tiny: 16 px, 4 filters."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from PIL import Image
from saved_model_tools import decode_png, show_signatures
from train_data import blob_image, checkpoint_step, optimizer_iterations, read_job, wait_until, write_records

from preprocess import arrays, pipeline
from trainer import loop
from trainer.task import resolve_config

SIZE = 16
TINY = ["--image-size", str(SIZE), "--batch-size", "4", "--latent-dim", "8", "--generator-filters", "4",
        "--discriminator-filters", "4", "--generator-layers", "1", "--discriminator-layers", "1"]
PAIRINGS = {  # pairing -> extra flags (each zoo option on in one of them)
    ("gan", "gan"): ["--loss", "lsgan"],
    ("dcgan", "dcgan"): ["--augment", "diffaug", "--ema", "0.9"],
    ("gan", "wgan"): ["--n-critic", "2"],
    ("dcgan", "wgan-gp"): ["--spectral-norm"],
    ("cgan", "cgan"): ["--loss", "hinge"],
}
EMBEDDINGS_SIGNATURE = {"embeddings": ("DT_FLOAT", (-1, 8)), "key": ("DT_STRING", (-1,))}


def write_class_folders(folder, classes=("circles", "squares"), per_class: int = 6):
    rng = np.random.default_rng(0)
    for name in classes:
        os.makedirs(folder / name, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(blob_image(rng, SIZE + 4)).save(folder / name / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def plain_data(tmp_path_factory):
    return write_records(str(tmp_path_factory.mktemp("plain")), n_train=16, n_val=4, image_size=SIZE)


@pytest.fixture(scope="module")
def labelled_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    images = write_class_folders(root / "images")
    options = pipeline.Options(image_size=SIZE, center_crop=True, workers=1, class_labels=True)
    pipeline.run(str(images), str(root / "data"), options, progress=False)
    return str(root / "data")


def test_class_labels_come_from_sub_folders(labelled_data):
    with open(os.path.join(labelled_data, "manifest.json")) as f:
        assert json.load(f)["classes"] == [{"name": "circles"}, {"name": "squares"}]
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(os.path.join(labelled_data, "*.tfrecord")))
    labels = {}
    for serialized in records:
        example = tf.train.Example.FromString(serialized.numpy())
        name = example.features.feature["image/filename"].bytes_list.value[0].decode()
        labels[name] = example.features.feature["image/label"].int64_list.value[0]
    assert len(labels) == 12 and all(labels[n] == (n.startswith("squares/")) for n in labels)


def test_npz_input_with_labels(tmp_path):
    images = np.random.default_rng(1).uniform(0, 1, [10, 20, 20]).astype(np.float32)
    np.savez(tmp_path / "digits.npz", images=images, labels=np.arange(10) % 3)
    options = pipeline.Options(image_size=SIZE, workers=1, val_fraction=0.2)
    summary = arrays.run(str(tmp_path / "digits.npz"), str(tmp_path / "data"), options)
    assert summary.datasets[0].counts == {"train": 8, "val": 2}
    with open(tmp_path / "data" / "manifest.json") as f:
        manifest = json.load(f)
    assert manifest["classes"] == [{"name": "0"}, {"name": "1"}, {"name": "2"}] and manifest["center_crop"]


@pytest.mark.parametrize("pairing", list(PAIRINGS), ids=lambda pairing: "-".join(pairing))
def test_each_pairing_trains_through_the_shared_loop_and_exports(pairing, plain_data, labelled_data, tmp_path):
    generator, discriminator = pairing
    data = labelled_data if generator == "cgan" else plain_data
    config = resolve_config(["--model", "gan", "--generator", generator, "--discriminator", discriminator,
                             "--data-dir", data, "--job-dir", str(tmp_path / "job"), "--max-steps", "2",
                             "--sample-every-steps", "1", "--summary-every-steps", "1", *TINY,
                             *PAIRINGS[pairing]])
    result = loop.train(config)
    assert result.state == "SUCCEEDED" and result.step == 2
    saved = json.loads((tmp_path / "job" / "config.json").read_text())
    assert (saved["generator"], saved["discriminator"]) == pairing and saved["n_critic"] >= 1

    loaded = tf.saved_model.load(result.export_dir)
    assert set(loaded.signatures) == {"embeddings", "serving_default"}
    inputs = {"embeddings": tf.random.normal([3, 8]), "key": tf.constant(["a", "b", "c"])}
    if generator == "cgan":
        inputs["label"] = tf.constant([0, 1, 1], tf.int64)
        classes = json.loads(open(os.path.join(result.export_dir, "assets", "classes.json")).read())
        assert classes == {"classes": [{"name": "circles"}, {"name": "squares"}]}
    outputs = loaded.signatures["serving_default"](**inputs)
    assert [decode_png(png).shape for png in outputs["image_bytes"].numpy()] == [(SIZE, SIZE, 3)] * 3
    if generator == "cgan":  # exactly the two signatures, with the label input
        shown = show_signatures(result.export_dir)
        assert set(shown) - {"__saved_model_init_op"} == {"embeddings", "serving_default"}
        assert shown["embeddings"][0] == {**EMBEDDINGS_SIGNATURE, "label": ("DT_INT64", (-1,))}
        with pytest.raises(tf.errors.InvalidArgumentError, match="class id in \\[0, 2\\)"):
            loaded.signatures["embeddings"](**{**inputs, "label": tf.constant([0, 2, 1], tf.int64)})


def test_wgan_resumes_after_sigkill_with_its_critic_steps(plain_data, tmp_path):
    job = tmp_path / "job"
    command = [sys.executable, "-m", "trainer.task", "--model", "gan", "--generator", "dcgan", "--discriminator",
               "wgan", "--data-dir", plain_data, "--job-dir", str(job), "--max-steps", "60",
               "--checkpoint-every-steps", "5", "--sample-every-steps", "1000", *TINY]
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: checkpoint_step(job) is not None, 240, proc, "the first checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = checkpoint_step(job)
    assert 0 < killed_at < 60
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"at step {killed_at}" in done.stdout + done.stderr
    assert read_job(job)["state"] == "SUCCEEDED"
    iterations = optimizer_iterations(str(job / "checkpoints" / "ckpt-60"))
    by_network = {("generator" if "generator" in key else "discriminator"): value
                  for key, value in iterations.items()}
    assert by_network == {"generator": 60, "discriminator": 5 * 60}  # one step = 1 G update after 5 critic ones


def test_run_training_with_a_zoo_config_naming_an_npz_data_path(tmp_path):
    from conftest import free_port

    rng = np.random.default_rng(2)
    np.savez(tmp_path / "art.npz", images=rng.integers(0, 256, [12, 20, 20, 3], dtype=np.uint8),
             labels=np.arange(12) % 2)
    config = tmp_path / "zoo.json"
    config.write_text(json.dumps({"generator": {"choice": "cgan"}, "discriminator": {"choice": "cgan"},
                                  "data_path": "art.npz", "metric_evaluate": "MMD", "image_size": SIZE}))
    (tmp_path / "pickled.pkl").write_bytes(b"never loaded")
    env = {**os.environ, "GENART_HOME": str(tmp_path / "home")}
    run = [os.path.join(REPO_ROOT, "run_training.sh"), "-m", "zoo.json", "-p", str(free_port())]
    refused = subprocess.run([*run, "-d", "pickled.pkl", "-j", "refused"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)  # -d wins over data_path
    assert refused.returncode == 2 and "np.savez" in refused.stderr and "--allow-pickle" in refused.stderr
    assert not (tmp_path / "home" / "jobs" / "refused").exists()
    done = subprocess.run([*run, "-j", "npz", "-s", "2", "--", *TINY], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job = tmp_path / "home" / "jobs" / "npz"
    assert read_job(job)["model"] == "gan" and read_job(job)["state"] == "SUCCEEDED"
    saved = json.loads((job / "config.json").read_text())
    assert saved["classes"] == ["0", "1"] and saved["metric_evaluate"] == ["mmd"] and saved["generator"] == "cgan"
    assert os.path.exists(job / "export" / "assets" / "classes.json")
    evaluation = json.loads((job / "eval" / "metrics-0000002.json").read_text())  # metric_evaluate: MMD
    assert set(evaluation["metrics"]) == {"mmd"}, evaluation
    deployed = subprocess.run([os.path.join(REPO_ROOT, "create_model.sh"), "-j", "npz"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    assert deployed.returncode == 0, deployed.stderr
    assert os.path.exists(tmp_path / "home" / "models" / "npz" / "1" / "assets" / "classes.json")


def test_a_preprocessed_data_path_is_used_or_copied(plain_data, tmp_path):
    from trainer import prepare

    config = tmp_path / "zoo.json"
    config.write_text(json.dumps({"generator": "dcgan", "discriminator": "dcgan", "data_path": plain_data}))
    assert resolve_config(["--config", str(config), "--job-dir", str(tmp_path / "j")]).data_dir == plain_data
    job = tmp_path / "job"
    flags = ["--model", "gan", "--data-dir", str(job / "data"), "--job-dir", str(job)]
    assert prepare.main(["--source", plain_data, "--", *flags]) == 0
    with open(os.path.join(plain_data, "manifest.json")) as f, open(job / "data" / "manifest.json") as g:
        assert json.load(f) == json.load(g)
    assert sorted(os.listdir(job / "data")) == sorted(os.listdir(plain_data))
    assert prepare.main(["--source", plain_data, "--", *flags]) == 0  # up to date: not copied again


def test_the_exported_generator_is_the_weight_average_when_ema_is_on():
    from trainer.models.gan import GANZoo
    from trainer.models.gan_config import GANZooConfig

    config = GANZooConfig(image_size=SIZE, batch_size=4, latent_dim=8, generator_filters=4, discriminator_filters=4,
                          ema=0.5, augment="none").validate()
    model = GANZoo(config)
    model.build_for_training()
    assert model.exported_generator() is model.ema_generator  # before any step: the live weights
    for a, b in zip(model.ema_generator.weights, model.generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    step = tf.function(model.train_step)
    previous = [v.numpy() for v in model.generator.trainable_variables]
    for _ in range(2):
        previous = [v.numpy() for v in model.generator.trainable_variables]
        step(tf.random.uniform([4, SIZE, SIZE, 3], -1, 1))
    exported = model.exported_generator()
    averages = model.generator_optimizer._model_variables_moving_average
    for target, average, live, before in zip(exported.trainable_variables, averages,
                                             model.generator.trainable_variables, previous):
        np.testing.assert_allclose(target.numpy(), average.numpy())
        np.testing.assert_allclose(average.numpy(), 0.5 * before + 0.5 * live.numpy(), rtol=1e-5, atol=1e-6)
    _, specs = model.export_spec()
    assert specs["embeddings"].networks == [model.ema_generator]
