"""The VAE-GAN's learned affine map between the prior space and the aggregate posterior (issue 19).

With the feature-space ELBO's small KL weight (1 / feature size), the encoder's posterior means drift far from
N(0, I): their mean is off zero and their covariance is nowhere near the identity, so the decoder, which sees
those means for every reconstruction, is mostly trained off the region N(0, I) samples fall in. The map fits a
Gaussian to the aggregate posterior (mean `shift`, covariance `scale @ scale.T`: the covariance of the training
set's posterior means plus their average posterior variance, Cholesky-factored) and is applied in both directions:

- `to_posterior(z) = shift + scale z`: an `embeddings` request (z ~ N(0, I)) is decoded as the posterior it stands for;
- `to_prior(m) = scale^-1 (m - shift)`: an image's posterior mean, as its `image_bytes` embedding;

so `to_posterior(to_prior(m)) = m` and the round trip image -> embedding -> image -> embedding is what it was.
Computed in float64 (the map is d x d, cheap), it adds no visible error. Identity until fitted.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

RIDGE = 1e-6          # added to the covariance's diagonal: a positive definite fit from any number of images
MAX_FIT_IMAGES = 2048  # training images whose posterior means are fitted


class PriorMap(keras.layers.Layer):
    def __init__(self, latent_dim: int, **kwargs):
        super().__init__(**kwargs)
        eye = np.eye(latent_dim)
        self.shift = self.add_weight(shape=(latent_dim,), initializer="zeros", trainable=False, dtype="float64",
                                     name="shift")
        self.scale = self.add_weight(shape=(latent_dim, latent_dim), initializer=keras.initializers.Constant(eye),
                                     trainable=False, dtype="float64", name="scale")
        self.inverse = self.add_weight(shape=(latent_dim, latent_dim),
                                       initializer=keras.initializers.Constant(eye), trainable=False,
                                       dtype="float64", name="inverse")

    def to_posterior(self, z):
        z = tf.cast(z, tf.float64)
        return tf.cast(self.shift + tf.matmul(z, self.scale, transpose_b=True), tf.float32)

    def to_prior(self, means):
        centred = tf.cast(means, tf.float64) - self.shift
        return tf.cast(tf.matmul(centred, self.inverse, transpose_b=True), tf.float32)

    def fit(self, means: np.ndarray, variances: np.ndarray) -> dict[str, float]:
        """Fit to posterior means [n, d] and variances [n, d]; returns how far they were from N(0, I).

        Statistics that are not finite, or not a usable covariance, leave the map as it was (and say so in the
        returned scalars): a diverging run then fails on its non-finite loss, naming the step, as it would have
        without the map, instead of in the middle of saving a checkpoint.
        """
        means, variances = np.asarray(means, np.float64), np.asarray(variances, np.float64)
        with np.errstate(all="ignore"):
            shift = means.mean(axis=0)
            covariance = np.cov(means, rowvar=False, bias=True).reshape(len(shift), len(shift))
            covariance += np.diag(variances.mean(axis=0) + RIDGE)
        if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(covariance))):
            return {"prior_map/fit_skipped": 1.0}
        try:
            scale = np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError:
            return {"prior_map/fit_skipped": 1.0}
        self.shift.assign(shift)
        self.scale.assign(scale)
        self.inverse.assign(np.linalg.inv(scale))
        eigenvalues = np.linalg.eigvalsh(covariance)
        return {"prior_map/mean_norm": float(np.linalg.norm(shift)),
                "prior_map/cov_trace_per_dim": float(np.trace(covariance) / len(shift)),
                "prior_map/cov_eig_min": float(eigenvalues[0]), "prior_map/cov_eig_max": float(eigenvalues[-1]),
                "prior_map/mean_posterior_variance": float(variances.mean())}
