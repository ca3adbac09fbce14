"""The VAE-GAN itself: DCGAN networks at every size, the export contract, and that a tiny model learns."""
from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf

from train_data import write_records
from trainer import networks
from trainer.models.vaegan_config import VAEGANConfig


@pytest.mark.parametrize("size", [32, 64, 128])
def test_dcgan_networks_work_at_every_size(size):
    kw = dict(image_size=size, base_filters=4)
    encoder = networks.build("dcgan_encoder", latent_dim=7, **kw)
    decoder = networks.build("dcgan_decoder", latent_dim=7, **kw)
    discriminator = networks.build("dcgan_discriminator", **kw)
    images = tf.random.uniform([2, size, size, 3], -1, 1)
    mean, log_variance = encoder(images)
    assert mean.shape == log_variance.shape == (2, 7)
    decoded = decoder(mean)
    assert decoded.shape == (2, size, size, 3)
    assert float(tf.reduce_max(tf.abs(decoded))) <= 1.0  # tanh
    logit, features = discriminator(decoded)
    assert logit.shape == (2, 1)
    assert features.shape[1] == size // 4 and features.shape[3] == 8  # the second stage: base * 2 filters


def test_dcgan_refuses_sizes_it_cannot_mirror():
    with pytest.raises(ValueError, match="4 \\* 2\\*\\*n"):
        networks.build("dcgan_decoder", image_size=48)


def _tiny_model(**overrides):
    from trainer.models.vaegan import VAEGAN

    values = dict(image_size=32, base_filters=4, latent_dim=6, batch_size=4, center_crop=True)
    values.update(overrides)
    model = VAEGAN(VAEGANConfig(**values).validate())
    model.build_for_training()
    return model


def test_export_spec_is_the_interface_contract():
    model = _tiny_model()
    default, specs = model.export_spec()
    assert default == "embeddings" and set(specs) == {"embeddings", "image_bytes"}
    assert (specs["embeddings"].input, specs["embeddings"].output) == ("embeddings", "image_bytes")
    assert (specs["image_bytes"].input, specs["image_bytes"].output) == ("image_bytes", "embeddings")
    assert specs["embeddings"].networks == [model.prior_map, model.decoder]  # the prior map in both (issue 19)
    assert specs["image_bytes"].networks == [model.prior_map, model.encoder]
    images = tf.random.uniform([3, 32, 32, 3], -1, 1)
    embeddings = specs["image_bytes"].fn(images)
    assert embeddings.shape == (3, 6)
    np.testing.assert_array_equal(embeddings, specs["image_bytes"].fn(images))  # posterior mean: deterministic
    assert specs["embeddings"].fn(embeddings).shape == (3, 32, 32, 3)


def test_one_step_updates_every_network_once_and_returns_finite_losses():
    model = _tiny_model()
    before = [w.numpy().copy() for w in (model.encoder.trainable_weights[0], model.decoder.trainable_weights[0],
                                         model.discriminator.trainable_weights[0])]
    losses = tf.function(model.train_step)(tf.random.uniform([4, 32, 32, 3], -1, 1))
    assert {"encoder", "decoder", "discriminator", "kl", "feature_recon"} <= set(losses)
    assert all(np.isfinite(float(v)) for v in losses.values())
    for optimizer in (model.encoder_optimizer, model.decoder_optimizer, model.discriminator_optimizer):
        assert int(optimizer.iterations) == 1
    after = (model.encoder.trainable_weights[0], model.decoder.trainable_weights[0],
             model.discriminator.trainable_weights[0])
    assert all(not np.allclose(b, a.numpy()) for b, a in zip(before, after))


def test_sample_grids_pair_originals_with_reconstructions():
    model = _tiny_model()
    grids = model.sample_grids(tf.random.uniform([16, 32, 32, 3], -1, 1))
    assert grids["samples"].shape == (8 * 32, 8 * 32, 3) and grids["samples"].dtype == tf.uint8
    assert grids["reconstructions"].shape == (4 * 32, 8 * 32, 3)  # originals, reconstructions, x2


def test_tiny_vaegan_learns_to_reconstruct(tmp_path):
    """32 px, 8 base filters: after 400 steps the val reconstruction error is < 0.6x its value at step 0 (< 0.5x with
    Keras's batch norm, 0.53x with the fused kernel: the same maths, other float rounding, another trajectory)."""
    from trainer import loop

    data = write_records(str(tmp_path / "data"), n_train=64, n_val=16)
    config = VAEGANConfig(data_dir=data, job_dir=str(tmp_path / "learn"), image_size=32, base_filters=8,
                          latent_dim=32, batch_size=16, learning_rate=1e-3, max_steps=400,
                          checkpoint_every_steps=400, summary_every_steps=100, sample_every_steps=400,
                          center_crop=True).validate()
    result = loop.train(config, stream=io.StringIO())
    assert result.state == "SUCCEEDED" and result.step == 400
    before, after = (result.metrics[s]["val_reconstruction_mse"] for s in (0, 400))
    assert after < 0.6 * before, f"val reconstruction MSE {before:.4f} -> {after:.4f}"


def test_the_model_also_trains_with_keras_fit(tmp_path):
    """keras-io style: `compile()` + `fit()` run the same one-step `train_step`."""
    from trainer.models.vaegan import VAEGAN

    data = write_records(str(tmp_path / "data"), n_train=8, n_val=0)
    model = VAEGAN(VAEGANConfig(image_size=32, base_filters=4, latent_dim=6, batch_size=4, center_crop=True))
    model.compile()
    history = model.fit(model.make_train_dataset(data, 4), steps_per_epoch=2, epochs=1, verbose=0)
    assert {"encoder", "decoder", "discriminator"} <= set(history.history)
    assert int(model.encoder_optimizer.iterations) == 2
