"""Issue 19, time to the first good picture: the defaults picker (device + data -> sizes, flags override, saved in
config.json) and the VAE-GAN's prior map (round trip exact, in both exported signatures, resume exact)."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from train_data import write_records

from artifacts import jobs
from trainer import sizing
from trainer.sizing import Data, Device
from trainer.task import resolve_config

CPU2, CPU16, GPU = Device(cores=2, gpus=0), Device(cores=16, gpus=0), Device(cores=8, gpus=1)


# ---------------------------------------------------------------- the defaults picker (TensorFlow-free)


@pytest.mark.parametrize("device, data, expected", [
    (CPU2, Data(num_images=4500), {"image_size": 32, "base_filters": 16, "batch_size": 16}),
    (CPU16, Data(num_images=4500), {"image_size": 64, "base_filters": 32, "batch_size": 32}),
    (GPU, Data(num_images=4500), {"image_size": 64, "base_filters": 64, "batch_size": 64}),  # INTERFACE's
    (GPU, Data(num_images=4500, image_size=128), {"image_size": 128, "base_filters": 64, "batch_size": 64}),
    (CPU2, Data(num_images=20), {"image_size": 32, "base_filters": 16, "batch_size": 5}),  # a quarter of the data
    (CPU2, Data(), {"image_size": 32, "base_filters": 16, "batch_size": 16}),
])
def test_the_picker_sizes_by_device_and_data(device, data, expected):
    values, why = sizing.pick(device, data)
    assert values == expected and why


def test_the_data_facts_come_from_the_manifest_else_the_image_folder(tmp_path):
    assert Data.of({"image_size": 32, "counts": {"train": 90, "val": 10}}) == Data(num_images=90, image_size=32)
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    assert Data.of(None, str(tmp_path)) == Data(num_images=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    return write_records(str(tmp_path_factory.mktemp("data") / "data"), n_train=80, n_val=8)


def test_unset_sizes_are_picked_and_said_flags_override(data, tmp_path):
    flags = ["--data-dir", data, "--job-dir", str(tmp_path / "job")]
    config = resolve_config(flags, device=CPU2)
    assert (config.image_size, config.base_filters, config.batch_size) == (32, 16, 16)  # 32: the data's
    assert config.sizing.startswith("base_filters 16, batch_size 16 (CPU only, 2 core(s)")
    config = resolve_config(flags + ["--base-filters", "8"], device=CPU2)
    assert (config.base_filters, config.batch_size) == (8, 16) and config.sizing.startswith("batch_size 16 (")
    config = resolve_config(flags + ["--base-filters", "8", "--batch-size", "4"], device=CPU2)
    assert (config.base_filters, config.batch_size, config.sizing) == (8, 4, None)
    assert resolve_config(flags, device=GPU).base_filters == 64
    cyclegan = resolve_config(flags + ["--model", "cyclegan"], device=CPU2)  # only models that opt in
    assert (cyclegan.base_filters, cyclegan.batch_size, cyclegan.sizing) == (64, 1, None)


def test_the_choice_is_saved_in_config_json_and_kept_on_resume(data, tmp_path):
    job = tmp_path / "job"
    flags = ["--data-dir", data, "--job-dir", str(job)]
    config = resolve_config(flags, device=CPU2)
    job.mkdir()
    (job / "config.json").write_text(config.to_json())  # as the loop saves it
    saved = json.loads((job / "config.json").read_text())
    assert (saved["base_filters"], saved["batch_size"]) == (16, 16) and "CPU only" in saved["sizing"]
    resumed = resolve_config(flags, device=CPU16)  # another machine: the job keeps its sizes
    assert (resumed.base_filters, resumed.batch_size, resumed.sizing) == (16, 16, saved["sizing"])


# ---------------------------------------------------------------- the prior map (TensorFlow)


def _tiny_model(**overrides):
    from trainer.models.vaegan import VAEGAN
    from trainer.models.vaegan_config import VAEGANConfig

    values = dict(image_size=32, base_filters=4, latent_dim=6, batch_size=4, center_crop=True)
    model = VAEGAN(VAEGANConfig(**{**values, **overrides}).validate())
    model.build_for_training()
    return model


def _fitted_model(data):
    """A map far from the identity, as a trained encoder's is: narrow posteriors (sigma 0.1) at the images' means."""
    model = _tiny_model()
    means = np.concatenate([model.encode_mean(images).numpy() for split in ("val", "train")
                            for images in model.evaluation_data(data, split, 40)])
    model.prior_map.fit(means, np.full_like(means, 0.01))
    return model


def test_the_map_is_fitted_to_the_posteriors_and_keeps_the_round_trip_exact(data):
    import tensorflow as tf

    model = _tiny_model()
    stats = model.fit_prior_map(data)
    assert set(stats) >= {"prior_map/exemplars", "prior_map/mean_norm", "prior_map/mean_posterior_variance"}
    means = np.concatenate([model.encode_mean(images).numpy() for images in model.evaluation_data(data, "train", 40)])
    count = int(model.prior_map.count.numpy())
    assert count == stats["prior_map/exemplars"] == int(len(means) ** 0.25) ** 4  # a full set of 4 index digits
    centres = model.prior_map.centres.numpy()[:count]  # the first training images' means, laid out anew
    np.testing.assert_allclose(centres[np.lexsort(centres.T)], means[:count][np.lexsort(means[:count].T)], atol=1e-6)
    model = _fitted_model(data)
    images = next(iter(model.evaluation_data(data, "val", 8)))
    embeddings = model.embed(images)  # image -> embedding -> image -> embedding
    np.testing.assert_allclose(model.generate(embeddings), model.decode(model.encode_mean(images)), atol=1e-5)
    np.testing.assert_allclose(model.embed(model.generate(embeddings)),
                               model.embed(model.decode(model.encode_mean(images))), atol=1e-4)
    typical = model.prior_map.to_posterior(tf.random.normal([200, 6]))  # where posterior means fall
    np.testing.assert_allclose(model.prior_map.to_posterior(model.prior_map.to_prior(typical)), typical, atol=1e-4)
    z = tf.random.normal([5, 6])
    assert not np.allclose(model.generate(z), model.decode(z), atol=1e-3)  # the map is used


def test_prior_vectors_become_exact_samples_of_the_aggregate_posterior(data):
    """z ~ N(0, I) picks every exemplar equally often through its 4 leading coordinates, and lands at that
    exemplar's mean plus its spread times a standard normal vector."""
    import tensorflow as tf
    from scipy.special import ndtr

    model = _fitted_model(data)
    count = int(model.prior_map.count.numpy())
    base = round(count ** 0.25)
    z = tf.random.stateless_normal([32000, 6], seed=[3, 4], dtype=tf.float64)
    mapped = model.prior_map.to_posterior(z).numpy()
    digits = np.minimum(np.floor(ndtr(z.numpy()[:, :4]) * base), base - 1)
    index = (digits @ base ** np.arange(3, -1, -1)).astype(int)
    counts = np.bincount(index, minlength=count)
    expected = len(index) / count
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    centres, spreads = model.prior_map.centres.numpy()[:count], model.prior_map.spreads.numpy()[:count]
    standard = (mapped - centres[index]) / spreads[index]
    assert np.all(np.abs(standard.mean(axis=0)) < 0.03) and np.all(np.abs(standard.std(axis=0) - 1.0) < 0.03)
    np.testing.assert_allclose(standard[:, 4:], z.numpy()[:, 4:], atol=1e-4)  # the other coordinates pass through


def test_the_map_is_in_both_exported_signatures(data, tmp_path):
    import tensorflow as tf
    from saved_model_tools import call

    from trainer import export

    model = _fitted_model(data)
    path = export.export_model(model, str(tmp_path / "job"))
    loaded = tf.saved_model.load(path)
    images = next(iter(model.evaluation_data(data, "val", 3)))
    pngs = [tf.io.encode_png(tf.cast(tf.round((image + 1.0) * 127.5), tf.uint8)).numpy() for image in images]
    keys = tf.constant([b"a", b"b", b"c"])
    embedded = call(loaded, "image_bytes", image_bytes=pngs, key=keys)["embeddings"]
    np.testing.assert_allclose(embedded, model.embed(images), atol=1e-4)
    z = np.random.default_rng(0).normal(size=[3, 6]).astype(np.float32)
    served = call(loaded, "embeddings", embeddings=z, key=keys)["image_bytes"]
    decoded = np.stack([tf.io.decode_png(p).numpy() for p in served]).astype(np.float32) / 127.5 - 1.0
    mapped_error = np.abs(decoded - model.generate(z).numpy()).max()
    assert mapped_error <= 1.5 / 127.5
    assert np.abs(decoded - model.decode(z).numpy()).max() > 4 * mapped_error  # not the unmapped decoder


def test_resume_stays_exact_with_the_prior_map_in_the_checkpoint(data, tmp_path):
    """Two runs to step 2 are identical (prior map included); a run resumed there continues at step 2 with every
    optimizer at its step, and each checkpoint's map is the fit of that checkpoint's own weights."""
    import tensorflow as tf

    from trainer import export, loop, precision

    tiny = ["--image-size", "32", "--base-filters", "4", "--latent-dim", "6", "--batch-size", "4",
            "--checkpoint-every-steps", "2", "--sample-every-steps", "3", "--summary-every-steps", "1",
            "--eval-every-steps", "0"]

    def run(job, steps):
        config = resolve_config(["--data-dir", data, "--job-dir", str(tmp_path / job), "--max-steps", str(steps),
                                 *tiny])
        log = io.StringIO()
        assert loop.train(config, stream=log).state == jobs.SUCCEEDED
        return config, log.getvalue()

    run("straight", 4)
    run("resumed", 2)
    config, log = run("resumed", 4)
    assert "resumed from" in log and "at step 2" in log

    def reader(job, step):
        return tf.train.load_checkpoint(str(tmp_path / job / "checkpoints" / f"ckpt-{step}"))

    straight, resumed = reader("straight", 2), reader("resumed", 2)
    names = sorted(name for name in straight.get_variable_to_shape_map()
                   if not name.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter")))
    from trainer.models.vaegan import PRIOR_MAP

    assert any(name.startswith(f"{PRIOR_MAP}/") for name in names)
    for name in names:
        np.testing.assert_array_equal(straight.get_tensor(name), resumed.get_tensor(name), err_msg=name)
    final = reader("resumed", 4)
    assert {int(final.get_tensor(f"{network}_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))
            for network in ("encoder", "decoder", "discriminator")} == {4}
    with precision.policy(config.precision):  # the job's own (GENART_TRAIN_DEFAULTS may make it mixed)
        model = _tiny_model()
    export.restore_checkpoint(model, str(tmp_path / "resumed" / "checkpoints" / "ckpt-4"))
    saved = {name: model.prior_map.get_weights()[i] for i, name in enumerate(("count", "centres", "spreads"))}
    model.fit_prior_map(data)
    for i, name in enumerate(("count", "centres", "spreads")):
        np.testing.assert_allclose(model.prior_map.get_weights()[i], saved[name], atol=1e-9, err_msg=name)


def test_a_checkpoint_from_before_the_prior_map_restores_and_refits_it(data, tmp_path):
    """Jobs trained by an older genart (no exemplar map in their checkpoints) still resume and export."""
    import tensorflow as tf

    from trainer import export

    old = _tiny_model(data_dir=data)
    from trainer.models.vaegan import PRIOR_MAP

    items = {name: item for name, item in old.checkpoint_items().items() if name != PRIOR_MAP}
    prefix = tf.train.Checkpoint(**items).save(str(tmp_path / "old" / "ckpt"))
    model = _tiny_model(data_dir=data)
    export.restore_checkpoint(model, prefix)
    np.testing.assert_array_equal(model.encoder.get_weights()[0], old.encoder.get_weights()[0])
    refit = model.prior_map.get_weights()
    old.fit_prior_map(data)  # the same weights, the same data: the same fit
    for got, want in zip(refit, old.prior_map.get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-9)
    assert not np.allclose(refit[1], 0.0)  # fitted, not left at the identity


def test_a_fit_to_non_finite_statistics_leaves_the_map_as_it_was():
    """A diverging run fails on its non-finite loss (test_train_loop), not inside the map's fit at a checkpoint."""
    model = _tiny_model()
    before = [weight.copy() for weight in model.prior_map.get_weights()]
    for means in (np.full([10, 6], np.nan), np.full([10, 6], 1e200)):
        assert model.prior_map.fit(means, np.ones([10, 6])) == {"prior_map/fit_skipped": 1.0}
    for got, want in zip(model.prior_map.get_weights(), before):
        np.testing.assert_array_equal(got, want)
