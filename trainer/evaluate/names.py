"""Names of evaluation results: every feature-space metric says which feature net made it.

`kid_digits`, `fd_digits`, `precision_digits`, `recall_digits`, `is_digits`, `kid_inception`,
`fid_inception`, ...: only a Fréchet distance of Inception features is called FID. Pixel-space metrics (`mmd`,
`ssim`, `psnr`) use no feature net and keep their bare names. TensorFlow-free.
"""
from __future__ import annotations

FEATURE_NETS = ("digits", "inception")
FEATURE_METRICS = ("kid", "fd", "precision", "recall", "is")  # computed on a feature net's output
PIXEL_METRICS = ("mmd", "ssim", "psnr")                        # computed on pixels
METRICS = FEATURE_METRICS + PIXEL_METRICS
NEEDS_CLASSIFIER = ("is",)                                     # needs class probabilities, not only features


def needs_classifier(metric: str) -> bool:
    return metric in NEEDS_CLASSIFIER


def metric_name(metric: str, feature_net: str) -> str:
    """The reported name of `metric` computed with `feature_net` ('digits' | 'inception')."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    if feature_net not in FEATURE_NETS:
        raise ValueError(f"unknown feature net {feature_net!r}; one of {', '.join(FEATURE_NETS)}")
    if metric in PIXEL_METRICS:
        return metric
    if metric == "fd" and feature_net == "inception":
        return "fid_inception"
    return f"{metric}_{feature_net}"


def parse_metrics(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """'kid,fd,mmd' (or a list; gan-toolkit's upper-case 'MMD' too) -> ['kid', 'fd', 'mmd'], checked, in order."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in (s.strip().lower() for s in items):
        if item not in METRICS:
            raise ValueError(f"unknown metric {item!r}; one of {', '.join(METRICS)}")
        if item not in out:
            out.append(item)
    return out


# Every metric of section 9, in the order they are computed and shown when none are chosen. The first is the one
# a training job's job.json tracks the best step by (`better`).
DEFAULT_METRICS = ("kid", "fd", "precision", "recall", "is", "mmd", "ssim", "psnr")
HIGHER_IS_BETTER = ("precision", "recall", "is", "ssim", "psnr")  # kid, fd and mmd are distances: lower is better
RECONSTRUCTION_METRICS = ("ssim", "psnr")                      # need reconstructions (VAE-GAN, CycleGAN cycles)


def base_metric(name: str) -> str:
    """'kid_digits' -> 'kid', 'fid_inception' -> 'fd', 'ssim' -> 'ssim'."""
    if name == "fid_inception":
        return "fd"
    for net in FEATURE_NETS:
        if name.endswith(f"_{net}"):
            return name[: -len(net) - 1]
    return name


def better(name: str, value: float, than: float | None) -> bool:
    """Whether `value` of metric `name` (a reported name) is better than `than` (None: nothing to beat)."""
    if than is None:
        return True
    return value > than if base_metric(name) in HIGHER_IS_BETTER else value < than
