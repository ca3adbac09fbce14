"""Sample-quality metrics in vectorised float64 NumPy: MMD, KID, Fréchet distance, k-NN precision/recall,
Inception Score, SSIM and PSNR.

Feature metrics take two arrays of shape (n, d) (`features.py` makes them); pixel metrics take images
(n, h, w[, c]). Nothing here knows which network made the features: `names.py` names the results.
"""
from __future__ import annotations

import numpy as np

GAN_TOOLKIT_ALPHA = 0.05  # gan-toolkit's kernel k(a, b) = exp(-alpha * |a - b|^2), on pixels scaled to [-1, 1]
MMD_ESTIMATORS = ("biased", "unbiased", "gan-toolkit")


def _rows(x) -> np.ndarray:
    """(n, ...) -> (n, d) float64."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def squared_distances(a, b) -> np.ndarray:
    """All pairwise squared Euclidean distances, (n, m), clipped at 0 against round-off."""
    a, b = _rows(a), _rows(b)
    d = np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def _offdiag_mean(k: np.ndarray) -> float:
    n = len(k)
    return float((k.sum() - np.trace(k)) / (n * (n - 1)))


def _mmd2_from_kernels(kxx, kyy, kxy, estimator: str) -> float:
    """MMD² from the three kernel matrices; `estimator` as in `mmd`."""
    if estimator == "biased":      # V-statistic: |mean embedding difference|² >= 0, exactly 0 for identical sets
        return float(kxx.mean() + kyy.mean() - 2.0 * kxy.mean())
    if estimator == "unbiased":    # U-statistic (Gretton et al. 2012, eq. 3): diagonals left out
        return _offdiag_mean(kxx) + _offdiag_mean(kyy) - 2.0 * float(kxy.mean())
    if estimator == "gan-toolkit":  # diagonals kept but divided by B(B-1): the U-statistic + 2/(B-1)
        b = len(kxx)
        return float((kxx.sum() + kyy.sum()) / (b * (b - 1)) - 2.0 * kxy.sum() / (b * b))
    raise ValueError(f"unknown MMD estimator {estimator!r}; one of {MMD_ESTIMATORS}")


def mmd(x, y, alpha: float = GAN_TOOLKIT_ALPHA, estimator: str = "biased") -> float:
    """Gaussian-kernel MMD² between two sets of samples (images are flattened).

    The kernel is IBM gan-toolkit's (agant/evaluation/MMD.py): k(a, b) = exp(-alpha |a - b|²), alpha = 0.05,
    on images scaled to [-1, 1] (gan-toolkit also caps each set at 250 samples; callers choose the count).
    gan-toolkit's own estimator keeps the k(a, a) = 1 diagonals while dividing by B(B-1): that is exactly the
    unbiased MMD² + 2/(B-1), so identical sets never score 0. The default here is the biased (V-statistic)
    MMD², 0 for identical sets and never negative; `estimator="unbiased"` is the U-statistic, `"gan-toolkit"`
    gan-toolkit's formula (to compare with its numbers).
    """
    x, y = _rows(x), _rows(y)
    if estimator == "gan-toolkit" and len(x) != len(y):
        raise ValueError("gan-toolkit's MMD needs two sets of the same size")
    kxx, kyy, kxy = (np.exp(-alpha * squared_distances(a, b)) for a, b in ((x, x), (y, y), (x, y)))
    return _mmd2_from_kernels(kxx, kyy, kxy, estimator)


def polynomial_kernel(a, b) -> np.ndarray:
    """KID's kernel k(a, b) = (a·b / d + 1)³ (Bińkowski et al. 2018)."""
    a, b = _rows(a), _rows(b)
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kid_mmd2(x, y) -> float:
    """Unbiased polynomial-kernel MMD² of two whole feature sets (KID without the subset averaging)."""
    return _mmd2_from_kernels(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y),
                              "unbiased")


def kid_subsets(x, y, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> np.ndarray:
    """KID estimates of `n_subsets` random subsets (each set subsampled without replacement to
    min(subset_size, len(x), len(y))), as in Bińkowski et al.'s reference code. Their mean is KID."""
    x, y = _rows(x), _rows(y)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    return np.array([kid_mmd2(x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)])
                     for _ in range(n_subsets)])


def kid(x, y, n_subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """Kernel Inception Distance (with whatever features are given): mean of `kid_subsets`."""
    return float(np.mean(kid_subsets(x, y, n_subsets, subset_size, seed)))


def _sym_sqrt(s: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues -> 0)."""
    w, v = np.linalg.eigh((s + s.T) / 2.0)
    return (v * np.sqrt(np.maximum(w, 0.0))) @ v.T


def trace_sqrt_product(s1, s2) -> float:
    """tr((S1 S2)^½) = tr((√S1 S2 √S1)^½): the eigenvalues of a symmetric PSD matrix, so no complex parts."""
    r = _sym_sqrt(np.asarray(s1, dtype=np.float64))
    m = r @ np.asarray(s2, dtype=np.float64) @ r
    return float(np.sum(np.sqrt(np.maximum(np.linalg.eigvalsh((m + m.T) / 2.0), 0.0))))


def frechet_distance_from_stats(mu1, s1, mu2, s2) -> float:
    """|mu1 - mu2|² + tr(S1 + S2 - 2 (S1 S2)^½): the Fréchet (2-Wasserstein²) distance of two Gaussians."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))
    return max(value, 0.0)


def gaussian_stats(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (n-1)-normalised covariance of a feature set."""
    x = _rows(x)
    if len(x) < 2:
        raise ValueError("a covariance needs at least 2 samples")
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(x, y) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID when they are Inception pool3)."""
    return frechet_distance_from_stats(*gaussian_stats(x), *gaussian_stats(y))


def _knn_radii(x: np.ndarray, k: int, chunk: int) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row (itself excluded)."""
    if len(x) <= k:
        raise ValueError(f"k-NN radii need more than k={k} samples, got {len(x)}")
    out = np.empty(len(x))
    for i in range(0, len(x), chunk):
        d = squared_distances(x[i:i + chunk], x)
        out[i:i + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself (distance 0)
    return np.sqrt(out)


def _coverage(queries: np.ndarray, support: np.ndarray, radii: np.ndarray, chunk: int) -> float:
    """Fraction of queries inside at least one ball (support[j], radii[j])."""
    inside = np.empty(len(queries), dtype=bool)
    for i in range(0, len(queries), chunk):
        d = np.sqrt(squared_distances(queries[i:i + chunk], support))
        inside[i:i + chunk] = np.any(d <= radii[None, :], axis=1)
    return float(inside.mean())


def precision_recall(real, fake, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): precision = share of fake samples inside the
    real manifold (union of balls reaching each real sample's k-th neighbour); recall = the converse."""
    real, fake = _rows(real), _rows(fake)
    precision = _coverage(fake, real, _knn_radii(real, k, chunk), chunk)
    recall = _coverage(real, fake, _knn_radii(fake, k, chunk), chunk)
    return precision, recall


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) from class probabilities (n, classes): exp(E_x KL(p(y|x) | p(y)))
    in each of `splits` consecutive parts; returns (mean, std) over the parts. The parts are taken in the given
    order, so shuffle a set sorted by class first (each part must see the class mix)."""
    p = np.asarray(probs, dtype=np.float64)
    splits = max(1, min(splits, len(p)))
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _as_nhwc(images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    return x[..., None] if x.ndim == 3 else x


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The normalised 1-D Gaussian taps that tf.image.ssim uses (its 2-D window is their outer product)."""
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-t * t / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 'VALID' filtering of (n, h, w, c) over h and w."""
    size = len(taps)
    h, w = x.shape[1] - size + 1, x.shape[2] - size + 1
    rows = sum(taps[i] * x[:, i:i + h] for i in range(size))
    return sum(taps[i] * rows[:, :, i:i + w] for i in range(size))


def ssim(a, b, max_val: float = 1.0, filter_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> np.ndarray:
    """SSIM of each image pair (n, h, w[, c]) as tf.image.ssim computes it: Gaussian window, 'VALID' borders,
    mean over positions and channels. Returns an (n,) array."""
    a, b = _as_nhwc(a), _as_nhwc(b)
    if a.shape != b.shape:
        raise ValueError(f"SSIM needs images of one shape, got {a.shape} and {b.shape}")
    if min(a.shape[1:3]) < filter_size:
        raise ValueError(f"SSIM needs images of at least {filter_size}x{filter_size}, got {a.shape[1:3]}")
    taps = gaussian_window(filter_size, sigma)
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    mu_a, mu_b = _filter_valid(a, taps), _filter_valid(b, taps)
    var_a = _filter_valid(a * a, taps) - mu_a ** 2
    var_b = _filter_valid(b * b, taps) - mu_b ** 2
    cov = _filter_valid(a * b, taps) - mu_a * mu_b
    luminance = (2.0 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
    contrast_structure = (2.0 * cov + c2) / (var_a + var_b + c2)
    return (luminance * contrast_structure).mean(axis=(1, 2, 3))


def psnr(a, b, max_val: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of each image pair, (n,); +inf where the images are identical."""
    a, b = _as_nhwc(a), _as_nhwc(b)
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_val ** 2 / mse)
