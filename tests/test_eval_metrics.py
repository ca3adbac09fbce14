"""trainer.evaluate.metrics against direct (loop / textbook formula) computations on small arrays, and names."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from trainer.evaluate import metrics, names


def rng(seed=0):
    return np.random.default_rng(seed)


def loop_kernel_means(x, y, k):
    """(mean k(x_i, x_j) over i != j, the same for y, mean k(x_i, y_j), full means of xx and yy)."""
    kxx = [[k(a, b) for b in x] for a in x]
    kyy = [[k(a, b) for b in y] for a in y]
    kxy = [[k(a, b) for b in y] for a in x]
    off = lambda m: sum(m[i][j] for i, j in itertools.permutations(range(len(m)), 2)) / (len(m) * (len(m) - 1))
    full = lambda m: sum(map(sum, m)) / (len(m) * len(m[0]))
    return off(kxx), off(kyy), full(kxy), full(kxx), full(kyy)


# --- MMD (gan-toolkit's Gaussian kernel) -------------------------------------------------------------------------
def test_mmd_estimators_match_loops():
    x, y = rng().uniform(-1, 1, (6, 2, 3)), rng(1).uniform(-1, 1, (6, 2, 3)) + 0.3
    gauss = lambda a, b: math.exp(-0.05 * float(np.sum((a - b) ** 2)))
    off_x, off_y, xy, full_x, full_y = loop_kernel_means(list(x), list(y), gauss)
    assert metrics.mmd(x, y) == pytest.approx(full_x + full_y - 2 * xy, rel=1e-12)
    assert metrics.mmd(x, y, estimator="unbiased") == pytest.approx(off_x + off_y - 2 * xy, rel=1e-12)
    b = len(x)  # gan-toolkit: 1/(B(B-1)) * (sum K + sum L) - 2/B² * sum P, diagonals included
    toolkit = (full_x + full_y) * b * b / (b * (b - 1)) - 2 * xy
    assert metrics.mmd(x, y, estimator="gan-toolkit") == pytest.approx(toolkit, rel=1e-12)


def test_mmd_identical_sets_zero_and_positive_otherwise():
    x = rng().uniform(-1, 1, (50, 8, 8))
    assert abs(metrics.mmd(x, x)) < 1e-12
    assert metrics.mmd(x, rng(1).uniform(-1, 1, (40, 8, 8)) * 0.5) > 1e-3
    # gan-toolkit's own formula keeps the k(x, x) = 1 diagonals: the unbiased value + 2/(B-1), never 0.
    for y in (x, x * 0.5):
        toolkit, unbiased = (metrics.mmd(x, y, estimator=e) for e in ("gan-toolkit", "unbiased"))
        assert toolkit == pytest.approx(unbiased + 2 / 49, rel=1e-12)
    assert metrics.mmd(x, x, estimator="gan-toolkit") > 2 / (50 * 49)
    with pytest.raises(ValueError):
        metrics.mmd(x, x, estimator="nope")


# --- KID ---------------------------------------------------------------------------------------------------------
def test_kid_mmd2_matches_loop_formula():
    x, y = rng().normal(size=(7, 5)), rng(1).normal(0.5, 1.2, size=(9, 5))
    poly = lambda a, b: (float(a @ b) / 5 + 1) ** 3
    off_x, off_y, xy, _, _ = loop_kernel_means(list(x), list(y), poly)
    assert metrics.kid_mmd2(x, y) == pytest.approx(off_x + off_y - 2 * xy, rel=1e-12)


def test_kid_identical_sets_near_zero():
    x = rng().normal(size=(2000, 16))
    k = metrics.polynomial_kernel(x, x)
    value = metrics.kid(x, x, n_subsets=1, subset_size=len(x))
    # Exactly 2/(n-1) (mean K - mean diag K): the U-statistic's O(1/n) offset for a set against itself.
    assert value == pytest.approx(2 / (len(x) - 1) * (k.mean() - np.diag(k).mean()), rel=1e-9)
    assert abs(value) < 0.01 * metrics.kid(x, x + 0.5, n_subsets=1, subset_size=len(x))


def test_kid_is_unbiased_over_small_subsets():
    x, y = rng().normal(size=(300, 4)), rng(1).normal(0.4, 1.0, size=(300, 4))
    full = metrics.kid_mmd2(x, y)
    subsets = metrics.kid_subsets(x, y, n_subsets=4000, subset_size=8, seed=3)
    stderr = subsets.std() / math.sqrt(len(subsets))
    assert abs(subsets.mean() - full) < 4 * stderr, (subsets.mean(), full, stderr)
    # The test has power: the biased (V-statistic) estimator on the same small subsets is off by far more.
    r = rng(3)
    biased = [metrics._mmd2_from_kernels(*(metrics.polynomial_kernel(a, b) for a, b in ((xs, xs), (ys, ys), (xs, ys))),
                                         "biased")
              for xs, ys in ((x[r.choice(300, 8, replace=False)], y[r.choice(300, 8, replace=False)])
                             for _ in range(4000))]
    assert np.mean(biased) - full > 10 * stderr


# --- Fréchet distance --------------------------------------------------------------------------------------------
def random_spd(d, seed):
    a = rng(seed).normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_frechet_distance_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([3.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance_from_stats(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_matches_scipy_sqrtm_formula():
    linalg = pytest.importorskip("scipy.linalg")
    for d, seed in ((2, 0), (6, 1), (12, 2)):
        s1, s2 = random_spd(d, seed), random_spd(d, seed + 10)
        mu1, mu2 = rng(seed).normal(size=d), rng(seed + 1).normal(size=d)
        direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
        assert metrics.frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-9)


def test_frechet_distance_of_samples_from_two_disjoint_gaussians():
    mu1, mu2, s1, s2 = np.zeros(3), np.full(3, 10.0), random_spd(3, 4), random_spd(3, 5)
    x = rng(6).multivariate_normal(mu1, s1, size=40000)
    y = rng(7).multivariate_normal(mu2, s2, size=40000)
    closed = metrics.frechet_distance_from_stats(mu1, s1, mu2, s2)
    assert metrics.frechet_distance(x, y) == pytest.approx(closed, rel=0.02)


def test_frechet_distance_identical_and_rank_deficient_sets():
    x = rng().normal(size=(500, 8))
    assert metrics.frechet_distance(x, x) < 1e-9
    few = rng(1).normal(size=(5, 20))  # fewer samples than dimensions: singular covariances stay finite
    value = metrics.frechet_distance(few, few + 1.0)
    assert np.isfinite(value) and value == pytest.approx(20.0, rel=1e-6)


# --- k-NN precision / recall -------------------------------------------------------------------------------------
def loop_precision_recall(real, fake, k):
    def radii(s):
        return [sorted(np.linalg.norm(p - q) for j, q in enumerate(s) if j != i)[k - 1] for i, p in enumerate(s)]

    def coverage(queries, support, r):
        return np.mean([any(np.linalg.norm(q - p) <= rp for p, rp in zip(support, r)) for q in queries])

    return coverage(fake, real, radii(real)), coverage(real, fake, radii(fake))


def test_precision_recall_match_loops():
    real, fake = rng().normal(size=(30, 3)), rng(1).normal(0.7, 0.6, size=(25, 3))
    got = metrics.precision_recall(real, fake, k=3, chunk=7)
    assert got == pytest.approx(loop_precision_recall(real, fake, 3), abs=1e-12)


def test_precision_recall_identical_disjoint_and_collapsed():
    real = rng().normal(size=(200, 5))
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    assert metrics.precision_recall(real, real + 100.0) == (0.0, 0.0)
    precision, recall = metrics.precision_recall(real, np.repeat(real[:1], 50, axis=0))
    assert precision == 1.0 and recall < 0.1


# --- Inception Score ---------------------------------------------------------------------------------------------
def test_inception_score_of_a_one_hot_uniform_classifier_is_the_class_count():
    for classes in (2, 10, 17):
        probs = np.eye(classes)[np.arange(classes * 40) % classes]
        mean, std = metrics.inception_score(probs, splits=10 if classes != 17 else 1)
        assert mean == pytest.approx(classes, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)
    assert metrics.inception_score(np.full((100, 10), 0.1))[0] == pytest.approx(1.0)


def test_inception_score_matches_loop_formula():
    probs = rng().dirichlet(np.full(6, 0.5), size=60)
    scores = []
    for part in np.array_split(probs, 3):
        py = part.mean(0)
        kl = [sum(p[c] * math.log(p[c] / py[c]) for c in range(6)) for p in part]
        scores.append(math.exp(sum(kl) / len(kl)))
    assert metrics.inception_score(probs, splits=3) == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-10)


# --- SSIM / PSNR (as tf.image computes them) ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def test_ssim_and_psnr_match_tf_image(tf):
    a = rng().uniform(size=(3, 16, 21, 3))
    b = np.clip(a + rng(1).normal(0, 0.1, a.shape), 0, 1)
    expected_ssim = tf.image.ssim(tf.constant(a, tf.float64), tf.constant(b, tf.float64), max_val=1.0).numpy()
    assert metrics.ssim(a, b) == pytest.approx(expected_ssim, abs=1e-5)  # tf works in float32
    expected_psnr = tf.image.psnr(tf.constant(a), tf.constant(b), max_val=1.0).numpy()
    assert metrics.psnr(a, b) == pytest.approx(expected_psnr, rel=1e-5)
    grey = a[..., 0] * 255  # (n, h, w) and another max_val
    assert metrics.ssim(grey, grey * 0.9, max_val=255.0) == pytest.approx(
        tf.image.ssim(tf.constant(grey[..., None]), tf.constant(grey[..., None] * 0.9), max_val=255.0).numpy(),
        abs=1e-5)


def test_ssim_psnr_identical_and_too_small():
    a = rng().uniform(size=(2, 12, 12))
    assert metrics.ssim(a, a) == pytest.approx([1.0, 1.0])
    assert np.all(np.isinf(metrics.psnr(a, a)))
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(a[:, :10], a[:, :10])


# --- Names -------------------------------------------------------------------------------------------------------
def test_metric_names_say_the_feature_net():
    assert names.metric_name("kid", "digits") == "kid_digits"
    assert names.metric_name("fd", "digits") == "fd_digits"
    assert names.metric_name("fd", "inception") == "fid_inception"
    assert names.metric_name("precision", "digits") == "precision_digits"
    assert names.metric_name("recall", "inception") == "recall_inception"
    assert names.metric_name("is", "digits") == "is_digits"
    assert names.metric_name("mmd", "digits") == names.metric_name("mmd", "inception") == "mmd"
    assert not any("fid" in names.metric_name(m, "digits") for m in names.METRICS)
    assert names.parse_metrics("kid, FD,MMD,kid") == ["kid", "fd", "mmd"]
    assert names.needs_classifier("is") and not names.needs_classifier("kid")
    for bad in (("fid", "digits"), ("kid", "vgg")):
        with pytest.raises(ValueError):
            names.metric_name(*bad)
