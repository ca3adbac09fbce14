"""The VAE-GAN's SavedModel (INTERFACE.md section 3), end to end: image files -> `preprocess` (center crop) ->
a short training by the shared loop (which exports at the end) -> the export, checked as TF Serving's TF1 loader
(`saved_model_cli`) and `tf.saved_model.load` see it: exact signatures, weights stored once, batches, determinism,
key pass-through, round trips, reconstruction, train/serve parity, `python -m trainer.export`, atomic writes, gs://.

One tiny model (32 px, 8 filters) is trained once per module, on six pictures of different sizes and formats.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from artifacts import dataset as layout
from artifacts import storage
from preprocess import pipeline, records
from saved_model_tools import (PREDICT_METHOD, call, decode_png, encode_image, pattern, run_signature,
                               show_signatures, transparent_image)
from artifacts import jobs, model_tree
from serving import registry
from trainer import export, task
from trainer.models import model_class

IMAGE_SIZE, LATENT_DIM = 32, 8
CONTRACT = {  # INTERFACE.md section 3, VAE-GAN: signature -> (inputs, outputs) as (dtype, shape)
    "embeddings": ({"embeddings": ("DT_FLOAT", (-1, LATENT_DIM)), "key": ("DT_STRING", (-1,))},
                   {"image_bytes": ("DT_STRING", (-1,)), "key": ("DT_STRING", (-1,))}),
    "image_bytes": ({"image_bytes": ("DT_STRING", (-1,)), "key": ("DT_STRING", (-1,))},
                    {"embeddings": ("DT_FLOAT", (-1, LATENT_DIM)), "key": ("DT_STRING", (-1,))}),
}
CONTRACT["serving_default"] = CONTRACT["embeddings"]
# Odd sizes and every decodable format: a non-square JPEG, PNGs (one upscaled), a tall BMP, a GIF.
FILES = {"wide.jpg": encode_image(pattern(0, 48, 64), "JPEG"), "square.png": encode_image(pattern(1, 40, 40)),
         "small.png": encode_image(pattern(2, 24, 30)), "tall.bmp": encode_image(pattern(3, 70, 45), "BMP"),
         "anim.gif": encode_image(pattern(4, 36, 52), "GIF"), "odd.png": encode_image(pattern(5, 33, 33)),
         # transparency, composited over white the same way by preprocessing (PIL) and the serving graph
         "rgba.png": transparent_image(6, 36, 40, "RGBA"), "gray_alpha.png": transparent_image(7, 32, 32, "LA"),
         "palette_trns.png": transparent_image(8, 40, 36, "P"), "transparent.gif": transparent_image(9, 34, 34, "P", "GIF")}
NAMES = sorted(FILES)
BYTES = [FILES[name] for name in NAMES]


def trainer_tensors(data_dir: str) -> dict[str, np.ndarray]:
    """{file name: what the trainer reads for it}: the `make_dataset(center_crop=True)` tensor of its record."""
    files = layout.split_files(data_dir, "train")
    names = tf.data.TFRecordDataset(files).map(lambda s: records.parse_example(s)["image/filename"])
    tensors = records.make_dataset(files, IMAGE_SIZE, center_crop=True, batch_size=len(FILES), training=False,
                                   drop_remainder=False)
    return dict(zip((n.decode() for n in names.as_numpy_iterator()), next(iter(tensors)).numpy()))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model, job dir, {file name: trainer tensor}) after `python -m preprocess --center-crop` and 300 steps of
    `python -m trainer.task` (which exports at the end); the model is rebuilt from the job's last checkpoint."""
    root = tmp_path_factory.mktemp("export")
    for name, data in FILES.items():
        storage.write_bytes(str(root / "images" / name), data)
    data_dir, job_dir = str(root / "data"), str(root / "home" / "jobs" / "vaegan_job")
    pipeline.run(str(root / "images"), data_dir, pipeline.Options(image_size=IMAGE_SIZE, center_crop=True,
                                                                  val_fraction=0.0, workers=1), progress=False)
    assert task.main(["--data-dir", data_dir, "--job-dir", job_dir, "--model", "vaegan", "--max-steps", "300",
                      "--batch-size", str(len(FILES)), "--latent-dim", str(LATENT_DIM), "--base-filters", "8",
                      "--learning-rate", "1e-3", "--checkpoint-every-steps", "1000",
                      "--summary-every-steps", "1000", "--sample-every-steps", "1000"]) == 0
    config = export.load_job_config(job_dir)
    assert (config.image_size, config.center_crop) == (IMAGE_SIZE, True)  # from the data's manifest
    model = model_class("vaegan")(config)
    model.build_for_training()
    export.restore_latest_checkpoint(model, os.path.join(job_dir, "checkpoints"))
    return model, job_dir, trainer_tensors(data_dir)


@pytest.fixture(scope="module")
def export_dir(trained) -> str:
    return os.path.join(trained[1], "export")


@pytest.fixture(scope="module")
def loaded(export_dir):
    return tf.saved_model.load(export_dir)


def keys(*names: str) -> tf.Tensor:
    return tf.constant(list(names), tf.string)


# ---------------------------------------------------------------- what TF Serving's loader sees


def test_saved_model_cli_lists_exactly_the_contract(export_dir):
    shown = show_signatures(export_dir)
    assert set(shown) - {"__saved_model_init_op"} == set(CONTRACT)
    for name, (inputs, outputs) in CONTRACT.items():
        assert shown[name] == (inputs, outputs, PREDICT_METHOD), name


def test_saved_model_cli_run_executes_both_signatures_in_the_tf1_loader(export_dir, loaded, tmp_path):
    key = np.array([b"a", b"b", b"c"])
    z = np.random.RandomState(0).randn(3, LATENT_DIM).astype(np.float32)
    generated = run_signature(export_dir, "embeddings", {"embeddings": z, "key": key}, str(tmp_path))
    assert list(generated["key"]) == list(key)
    assert [decode_png(png).shape for png in generated["image_bytes"]] == [(IMAGE_SIZE, IMAGE_SIZE, 3)] * 3
    assert list(generated["image_bytes"]) == list(call(loaded, "embeddings", embeddings=z, key=key)["image_bytes"])

    images = np.array(BYTES[:3], dtype=object)
    embedded = run_signature(export_dir, "image_bytes", {"image_bytes": images, "key": key}, str(tmp_path))
    assert list(embedded["key"]) == list(key) and embedded["embeddings"].shape == (3, LATENT_DIM)
    np.testing.assert_allclose(embedded["embeddings"],
                               call(loaded, "image_bytes", image_bytes=BYTES[:3], key=key)["embeddings"], atol=1e-5)


def test_each_weight_is_stored_once(trained, export_dir):
    model = trained[0]
    _, specs = model.export_spec()
    own_bytes = sum(v.numpy().nbytes for v in export.network_variables(specs))
    folder = os.path.join(export_dir, "variables")
    stored = sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))
    assert own_bytes <= stored <= 1.10 * own_bytes, (own_bytes, stored)
    # The discriminator is not needed to serve: storing it (or an optimizer) would break the bound above.
    assert sum(v.numpy().nbytes for v in model.discriminator.variables) > 0.1 * own_bytes


def test_export_dir_holds_only_the_saved_model(trained, export_dir):
    assert sorted(os.listdir(export_dir)) == ["assets", "fingerprint.pb", "saved_model.pb", "variables"]
    assert not [name for name in os.listdir(trained[1]) if name.startswith(".")]  # no temp dir left behind


# ---------------------------------------------------------------- behaviour through tf.saved_model.load


def test_batch_of_three_embeddings_to_three_pngs_with_keys_in_order(loaded):
    z = np.random.RandomState(1).randn(3, LATENT_DIM).astype(np.float32)
    out = call(loaded, "serving_default", embeddings=z, key=keys("k2", "k0", "k1"))
    assert list(out["key"]) == [b"k2", b"k0", b"k1"]
    images = [decode_png(png) for png in out["image_bytes"]]
    assert [image.shape for image in images] == [(IMAGE_SIZE, IMAGE_SIZE, 3)] * 3
    assert not np.array_equal(images[0], images[1])  # every instance generated, not the first one repeated
    alone = call(loaded, "embeddings", embeddings=z[2:], key=keys("k1"))
    assert np.abs(decode_png(alone["image_bytes"][0]).astype(int) - images[2]).max() <= 1


def test_batch_of_three_images_to_deterministic_posterior_means(loaded):
    batch = [BYTES[0], BYTES[1], BYTES[0]]
    first = call(loaded, "image_bytes", image_bytes=batch, key=keys("x", "y", "z"))
    again = call(loaded, "image_bytes", image_bytes=batch, key=keys("x", "y", "z"))
    assert first["embeddings"].shape == (3, LATENT_DIM) and first["embeddings"].dtype == np.float32
    assert list(first["key"]) == [b"x", b"y", b"z"]
    np.testing.assert_array_equal(first["embeddings"][0], first["embeddings"][2])  # same image, same vector
    np.testing.assert_array_equal(first["embeddings"], again["embeddings"])  # the mean, never a sample
    alone = call(loaded, "image_bytes", image_bytes=[BYTES[1]], key=keys("y"))
    np.testing.assert_allclose(alone["embeddings"][0], first["embeddings"][1], atol=1e-5)


def test_empty_batch_mismatched_keys_and_bad_images(loaded):
    out = call(loaded, "image_bytes", image_bytes=tf.constant([], tf.string), key=keys())
    assert out["embeddings"].shape == (0, LATENT_DIM) and out["key"].shape == (0,)
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of instances"):
        call(loaded, "embeddings", embeddings=np.zeros([2, LATENT_DIM], np.float32), key=keys("a"))
    with pytest.raises(tf.errors.InvalidArgumentError):
        call(loaded, "image_bytes", image_bytes=[b"not an image"], key=keys("a"))


def test_round_trip_and_reconstructions_are_closest_to_their_own_image(trained, loaded):
    tensors = trained[2]
    names = keys(*NAMES)
    embedded = call(loaded, "image_bytes", image_bytes=BYTES, key=names)
    generated = call(loaded, "embeddings", embeddings=embedded["embeddings"], key=embedded["key"])
    again = call(loaded, "image_bytes", image_bytes=generated["image_bytes"], key=generated["key"])
    assert list(again["key"]) == list(names.numpy()) and again["embeddings"].shape == (len(NAMES), LATENT_DIM)
    reconstructions = np.stack([decode_png(p) for p in generated["image_bytes"]]).astype(np.float32) / 127.5 - 1
    for i, name in enumerate(NAMES):
        distances = np.abs(reconstructions - tensors[name]).mean(axis=(1, 2, 3))  # every reconstruction vs. it
        assert np.argmin(distances) == i, (name, distances)


@pytest.mark.parametrize("name", NAMES)
def test_train_serve_parity(trained, loaded, name):
    """The serving graph's preprocessed tensor of a file equals the trainer's center-crop tensor of that file."""
    model, _, tensors = trained
    served = export.decode_images(tf.constant([FILES[name]]), IMAGE_SIZE).numpy()[0]  # what the signature maps
    assert np.abs(served - tensors[name]).max() < 1e-5
    embedded = call(loaded, "image_bytes", image_bytes=[FILES[name]], key=keys(name))["embeddings"]
    np.testing.assert_allclose(embedded, model.embed(tensors[name][None]).numpy(), atol=1e-4)


def test_the_trained_job_deploys_and_its_version_loads(trained, loaded):
    """The loop's job.json and export/ as the registry (`create_model.sh`) sees them."""
    home = os.path.dirname(os.path.dirname(trained[1]))
    [job] = jobs.list_jobs(home)
    assert (job["name"], job["state"], job["model"], job["step"]) == ("vaegan_job", "SUCCEEDED", "vaegan", 300)
    name, version, path = registry.deploy("vaegan_job", home=home)
    assert (name, version) == ("vaegan_job", 1) and model_tree.resolve_model_dir(name, home=home) == path
    deployed = tf.saved_model.load(path)
    z = np.random.RandomState(3).randn(2, LATENT_DIM).astype(np.float32)
    assert list(call(deployed, "embeddings", embeddings=z, key=keys("a", "b"))["image_bytes"]) == \
        list(call(loaded, "embeddings", embeddings=z, key=keys("a", "b"))["image_bytes"])


# ---------------------------------------------------------------- python -m trainer.export, writing export/


def copy_job_for_export(job_dir: str, target: str) -> str:
    """A job dir holding only what `python -m trainer.export` reads: config.json and checkpoints/."""
    storage.write_bytes(storage.join(target, "config.json"), storage.read_bytes(os.path.join(job_dir, "config.json")))
    storage.copytree(os.path.join(job_dir, "checkpoints"), storage.join(target, "checkpoints"))
    return target


def test_export_cli_restores_the_latest_checkpoint_and_a_failed_export_keeps_the_old_one(
        trained, loaded, tmp_path, monkeypatch):
    job_dir = copy_job_for_export(trained[1], str(tmp_path / "job"))
    assert export.main(["--job-dir", job_dir]) == 0
    restored = tf.saved_model.load(os.path.join(job_dir, "export"))
    z = np.random.RandomState(2).randn(2, LATENT_DIM).astype(np.float32)
    assert list(call(restored, "embeddings", embeddings=z, key=keys("a", "b"))["image_bytes"]) == \
        list(call(loaded, "embeddings", embeddings=z, key=keys("a", "b"))["image_bytes"])

    before = storage.read_bytes(os.path.join(job_dir, "export", "saved_model.pb"))

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export.tf.saved_model, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_model(trained[0], job_dir)
    assert sorted(os.listdir(job_dir)) == ["checkpoints", "config.json", "export"]  # no half-written temp dir
    assert storage.read_bytes(os.path.join(job_dir, "export", "saved_model.pb")) == before


def test_export_cli_errors(tmp_path, trained, capsys):
    assert export.main(["--job-dir", str(tmp_path / "missing")]) == 2
    assert "config.json" in capsys.readouterr().err
    storage.write_bytes(str(tmp_path / "config.json"), storage.read_bytes(os.path.join(trained[1], "config.json")))
    assert export.main(["--job-dir", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_gcs_job_dir_export_and_cli_upload_saved_model_pb_last(trained, loaded, gcs_bucket, monkeypatch, tmp_path):
    job_dir = copy_job_for_export(trained[1], f"{gcs_bucket}/jobs/vaegan_job")
    uploaded = []
    real_upload = storage.upload_file
    monkeypatch.setattr(storage, "upload_file", lambda src, dst: (uploaded.append(dst), real_upload(src, dst)))
    assert export.main(["--job-dir", job_dir]) == 0  # checkpoints read from the bucket, export written there
    target = f"{job_dir}/export"
    exported = [path for path in uploaded if path.startswith(target + "/")]
    assert exported[-1] == f"{target}/saved_model.pb" and len(exported) >= 3
    storage.copytree(target, str(tmp_path / "copy"))
    z = np.zeros([1, LATENT_DIM], np.float32)
    restored = tf.saved_model.load(str(tmp_path / "copy"))
    assert call(restored, "embeddings", embeddings=z, key=keys("0"))["image_bytes"][0] == \
        call(loaded, "embeddings", embeddings=z, key=keys("0"))["image_bytes"][0]
