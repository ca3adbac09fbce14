"""The VAE-GAN's prior map (issue 19): an invertible map between the prior space N(0, I) and the aggregate posterior
q(z) = mean_i N(mu_i, sigma_i^2) of (up to `prior_exemplars`) training images, exported in both signatures so the
round trip stays exact.

The encoder's posterior means do not fill N(0, I): they form clusters (digit classes, styles) with empty space
between them, where the decoder was never trained, so z ~ N(0, I) decoded directly (or through one Gaussian fit,
which fills the gaps) gives blends and fog. The decoder is trained on exactly q(z), so the map reads a prior vector
z as a sample of q(z) (the prior of the Exemplar VAE, Norouzi et al. 2020). The n = b^k exemplars are indexed by k
base-b digits, one per leading coordinate of z, laid out along the means' first k principal axes:

- `to_posterior(z)`: u_j = Phi(z_j) * b gives digit j = floor(u_j) of the exemplar i, and z_j is replaced by
  Phi^-1(u_j - digit j) (again N(0, 1), independent of i); the result is mu_i + sigma_i * z.
- `to_prior(m)`: i = the exemplar whose posterior gives m the highest density (among those leaving the k index
  coordinates within TAIL sigma); z = (m - mu_i) / sigma_i, with z_j moved back into digit j's interval. So
  `to_posterior(to_prior(m)) = m` to ~1e-5 through float32 embeddings: an image's embedding decodes to its own
  reconstruction, and every `image_bytes` prediction is a valid `embeddings` instance.

The export holds the exemplars' posteriors (2 x latent_dim floats each), not their images. Identity until fitted.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

EDGE = 1e-15      # a position inside an interval stays this far from its ends: Phi^-1 stays finite
INDEX_DIGITS = 4  # leading coordinates of z that pick the exemplar: one digit each, so float32 keeps their tails
TAIL, FAR_PENALTY = 3.0, 1e12  # to_prior prefers exemplars that leave the index coordinates within 3 sigma


def _cdf(x):
    return 0.5 * tf.math.erfc(-x / np.sqrt(2.0))


def _layout(means: np.ndarray, per_digit: int, digits: int) -> np.ndarray:
    """The exemplars' order: sorted along the means' first principal axis into `per_digit` blocks, each block
    sorted along the second axis, and so on, so that each index digit (each of z's leading coordinates) walks
    along one principal axis and neighbouring exemplars are similar."""
    centred = means - means.mean(axis=0)
    axes = np.linalg.svd(centred, full_matrices=False)[2] if len(means) > 1 else np.eye(means.shape[1])
    order = np.arange(len(means))
    for level in range(digits):
        blocks = order.reshape(per_digit ** level, -1)
        keys = centred[blocks] @ axes[min(level, len(axes) - 1)]
        order = np.take_along_axis(blocks, np.argsort(keys, axis=1, kind="stable"), axis=1).reshape(-1)
    return order


class PriorMap(keras.layers.Layer):
    def __init__(self, latent_dim: int, max_exemplars: int, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.max_exemplars = latent_dim, max_exemplars
        self.count = self.add_weight(shape=(), initializer="ones", trainable=False, dtype="int32", name="count")
        self.centres = self.add_weight(shape=(max_exemplars, latent_dim), initializer="zeros", trainable=False,
                                       dtype="float32", name="centres")
        self.spreads = self.add_weight(shape=(max_exemplars, latent_dim), initializer="ones", trainable=False,
                                       dtype="float32", name="spreads")

    # ---------------------------------------------------------------- the map, in the graph

    def _exemplars(self):
        """(centres, spreads) of the exemplars in use, float64, and the base of the index digits."""
        count = tf.convert_to_tensor(self.count)
        per_digit = tf.round(tf.cast(count, tf.float64) ** (1.0 / self._digits()))
        return (tf.cast(tf.convert_to_tensor(self.centres)[:count], tf.float64),
                tf.cast(tf.convert_to_tensor(self.spreads)[:count], tf.float64), per_digit)

    def _digits(self) -> int:
        """How many leading coordinates of z pick the exemplar (each one digit, base `per_digit`)."""
        return min(INDEX_DIGITS, self.latent_dim)

    def to_posterior(self, z):
        z = tf.cast(z, tf.float64)
        centres, spreads, per_digit = self._exemplars()
        digits = self._digits()
        position = _cdf(z[:, :digits]) * per_digit
        digit = tf.clip_by_value(tf.floor(position), 0.0, per_digit - 1.0)
        inside = tf.clip_by_value(position - digit, EDGE, 1.0 - EDGE)
        z = tf.concat([tf.math.ndtri(inside), z[:, digits:]], axis=1)
        index = tf.cast(tf.reduce_sum(digit * per_digit ** tf.range(digits - 1, -1, -1.0, tf.float64), 1), tf.int32)
        return tf.cast(tf.gather(centres, index) + tf.gather(spreads, index) * z, tf.float32)

    def to_prior(self, means):
        m = tf.cast(means, tf.float64)
        centres, spreads, per_digit = self._exemplars()
        digits = self._digits()
        precision = 1.0 / tf.square(spreads)                                      # [n_ex, d]
        # log N(m | centre_i, spread_i^2) up to a constant, for every (request, exemplar) pair, by matmuls
        quadratic = (tf.matmul(tf.square(m), precision, transpose_b=True)
                     - 2.0 * tf.matmul(m, centres * precision, transpose_b=True)
                     + tf.reduce_sum(tf.square(centres) * precision, axis=1))
        score = -0.5 * quadratic - tf.reduce_sum(tf.math.log(spreads), axis=1)
        # an exemplar that puts one of the index coordinates in the far tail would lose float32 precision there:
        # it is chosen only when every exemplar does
        leading = (m[:, None, :digits] - centres[None, :, :digits]) / spreads[None, :, :digits]   # [n, n_ex, k]
        far = tf.reduce_any(tf.abs(leading) > TAIL, axis=2)
        index = tf.argmax(tf.where(far, score - FAR_PENALTY, score), axis=1, output_type=tf.int32)
        z = (m - tf.gather(centres, index)) / tf.gather(spreads, index)
        place = per_digit ** tf.range(digits - 1, -1, -1.0, tf.float64)
        digit = tf.math.floormod(tf.floor(tf.cast(index, tf.float64)[:, None] / place), per_digit)
        position = (digit + tf.clip_by_value(_cdf(z[:, :digits]), EDGE, 1.0 - EDGE)) / per_digit
        z = tf.concat([tf.math.ndtri(position), z[:, digits:]], axis=1)
        return tf.cast(z, tf.float32)

    # ---------------------------------------------------------------- the fit

    def fit(self, means: np.ndarray, variances: np.ndarray) -> dict[str, float]:
        """Make the posteriors N(means, variances) [n, d] of the first `max_exemplars` training images the
        exemplars; returns scalars for TensorBoard.

        Statistics that are not finite leave the map as it was (and say so in the returned scalars): a diverging
        run then fails on its non-finite loss, naming the step, as it would have without the map, instead of in the
        middle of saving a checkpoint.
        """
        means = np.asarray(means, np.float64)[:self.max_exemplars]
        spreads = np.sqrt(np.asarray(variances, np.float64)[:self.max_exemplars])
        with np.errstate(all="ignore"):  # stored in float32: what overflows there is not finite either
            usable = (len(means) and np.all(np.isfinite(means.astype(np.float32)))
                      and np.all(np.isfinite(spreads.astype(np.float32))) and np.all(spreads > 0))
        if not usable:
            return {"prior_map/fit_skipped": 1.0}
        per_digit = int(np.floor(len(means) ** (1.0 / self._digits()) + 1e-9))
        count = per_digit ** self._digits()  # a full set of index digits: every exemplar has the same weight
        means, spreads = means[:count], spreads[:count]
        order = _layout(means, per_digit, self._digits())
        centres, padded = np.zeros((self.max_exemplars, self.latent_dim)), np.ones((self.max_exemplars,
                                                                                      self.latent_dim))
        centres[:count], padded[:count] = means[order], spreads[order]
        self.count.assign(count)
        self.centres.assign(centres.astype(np.float32))
        self.spreads.assign(padded.astype(np.float32))
        return {"prior_map/exemplars": float(count), "prior_map/mean_norm": float(np.linalg.norm(means.mean(axis=0))),
                "prior_map/means_variance": float(means.var(axis=0).mean()),
                "prior_map/mean_posterior_variance": float(np.square(spreads).mean())}
