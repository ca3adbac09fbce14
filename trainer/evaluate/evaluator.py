"""One model's evaluation on the train and val splits of its data (INTERFACE.md section 9), for any
`GenerativeModel`: the real sets, the generated and reconstructed sets its `evaluation_sets` gives, and the metrics.

- Real sets: each split's first min(num_samples, split size) images (center-cropped, in file order; for two domains
  the smaller domain's count), read once per `Evaluator` and kept, with their features, for later evaluations.
- Generated sets: `samples` are drawn until there are num_samples of them, seeded by (seed, chunk), so every
  evaluation of a run (and both splits) draws the same latents; `outputs` (translations) and `reconstructions` are
  one per real image.
- A metric over several generated or reconstructed sets (CycleGAN's two directions) is their mean. A metric that
  cannot be computed (too few images) is None; one the model or the feature net cannot give is left out, with a note.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from trainer.evaluate import metrics as m
from trainer.evaluate import names
from trainer.evaluate.features import FeatureNet, Features

SPLITS = ("train", "val")
BATCH_SIZE = 64
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000   # Bińkowski et al.'s reference settings
MMD_MAX_SAMPLES = 250                      # gan-toolkit's cap on each set
PSNR_MIN_MSE = 1e-10                       # identical images score 100 dB, not +inf (JSON has no infinity)
VALUE_RANGE = (-1.0, 1.0)                  # what the models' images mean
FEATURE_TWO_SET = ("kid", "fd", "precision", "recall")


@dataclasses.dataclass
class SplitImages:
    """One split's images, NumPy float32 [N, H, W, 3] in [-1, 1]; sets named as in `EvaluationSets`."""
    real: dict[str, np.ndarray]
    generated: dict[str, tuple[str, np.ndarray]]        # samples and outputs: (real set name, images)
    reconstructions: dict[str, tuple[str, np.ndarray]]  # (real set name, images row for row)


@dataclasses.dataclass
class Evaluation:
    results: dict[str, dict[str, float | None]]  # reported metric name -> {"train": x, "val": y}
    notes: list[str]                             # what was left out or could not be computed, and why


class NotApplicable(Exception):
    """The model gives no set this metric needs (e.g. SSIM of a model without reconstructions)."""


def _length(structure) -> int:
    import tensorflow as tf

    return min(len(x) for x in tf.nest.flatten(structure))


def _rows(structure, index):
    import tensorflow as tf

    return tf.nest.map_structure(lambda x: x[index], structure)


class _Collector:
    """Accumulates `EvaluationSets` of successive chunks as NumPy arrays."""

    def __init__(self):
        self.real: dict[str, list] = {}
        self.generated: dict[str, tuple[str, list]] = {}
        self.reconstructions: dict[str, tuple[str, list]] = {}
        self.sample_names: list[str] = []  # the generated sets drawn afresh at every call

    @staticmethod
    def _add(target: dict, named: dict) -> None:
        for name, (reference, images) in named.items():
            target.setdefault(name, (reference, []))[1].append(np.asarray(images, np.float32))

    def add(self, sets) -> None:
        for name, images in sets.real.items():
            self.real.setdefault(name, []).append(np.asarray(images, np.float32))
        self.sample_names = list(sets.samples)
        self._add(self.generated, {**sets.samples, **sets.outputs})
        self._add(self.reconstructions, sets.reconstructions)

    def add_samples(self, sets) -> None:
        self._add(self.generated, sets.samples)

    def sample_count(self) -> int:
        return min(sum(len(x) for x in self.generated[name][1]) for name in self.sample_names)

    def result(self, num_samples: int) -> SplitImages:
        def joined(named):
            return {name: (ref, np.concatenate(parts)[:num_samples]) for name, (ref, parts) in named.items()}

        return SplitImages({name: np.concatenate(parts) for name, parts in self.real.items()},
                           joined(self.generated), joined(self.reconstructions))


class Evaluator:
    """Evaluates `model` (its current weights) on the train and val splits of `data_dir`."""

    def __init__(self, model, data_dir: str, feature_net: FeatureNet, metrics: list[str], num_samples: int,
                 seed: int = 0, batch_size: int = BATCH_SIZE):
        self.model, self.data_dir, self.net = model, data_dir, feature_net
        self.num_samples, self.seed, self.batch_size = num_samples, seed, batch_size
        self.metrics, self.notes = [], []
        for metric in metrics:
            if names.needs_classifier(metric) and not feature_net.has_classifier:
                self.notes.append(f"{metric}: left out: the {feature_net.name} feature net has no classifier head "
                                  "(the Inception Score needs class probabilities)")
            else:
                self.metrics.append(metric)
        self._real: dict[str, object] = {}               # split -> nested real batch structure, or None
        self._real_features: dict[tuple[str, str], Features] = {}

    # ---------------------------------------------------------------- images

    def real_data(self, split: str):
        """The split's first min(num_samples, size) real items, one nested NumPy structure (cached), or None."""
        if split not in self._real:
            self._real[split] = self._read_real(split)
        return self._real[split]

    def _read_real(self, split: str):
        import tensorflow as tf

        dataset = self.model.evaluation_data(self.data_dir, split, self.batch_size)
        if dataset is None:
            return None
        parts, count = [], 0
        for batch in dataset:
            parts.append(tf.nest.map_structure(np.asarray, batch))
            count += _length(parts[-1])
            if count >= self.num_samples:
                break
        if not parts:
            return None
        joined = tf.nest.map_structure(lambda *xs: np.concatenate(xs), *parts)
        count = min(self.num_samples, _length(joined))
        return _rows(joined, slice(0, count)) if count else None

    def _seed(self, chunk: int) -> list[int]:
        return [self.seed, chunk]

    def generate(self, split: str, progress: Callable[[int], None] = lambda n: None) -> SplitImages | None:
        """The split's real, generated and reconstructed images (None when the data has no such split)."""
        real = self.real_data(split)
        if real is None:
            return None
        count, collected = _length(real), _Collector()
        chunks = range(0, count, self.batch_size)
        for chunk, start in enumerate(chunks):
            collected.add(self.model.evaluation_sets(_rows(real, slice(start, start + self.batch_size)),
                                                     self._seed(chunk)))
            progress(min(self.batch_size, count - start))
        chunk = len(chunks)
        while collected.sample_names and (done := collected.sample_count()) < self.num_samples:
            wanted = min(self.batch_size, self.num_samples - done)
            index = (np.arange(wanted) + chunk * self.batch_size) % count  # the real images again, in a cycle
            collected.add_samples(self.model.evaluation_sets(_rows(real, index), self._seed(chunk),
                                                             samples_only=True))
            progress(wanted)
            chunk += 1
        return collected.result(self.num_samples)

    # ---------------------------------------------------------------- metrics

    def evaluate(self, progress: Callable[[int], None] = lambda n: None) -> Evaluation:
        """Every metric for the train and val splits, by reported name (`names.metric_name`)."""
        notes, by_split = list(self.notes), {}
        for split in SPLITS:
            images = self.generate(split, progress)
            if images is None:
                notes.append(f"{split}: the data has no {split} split: its values are null")
                by_split[split] = dict.fromkeys(self.metrics)
            else:
                by_split[split] = self.score(split, images, notes)
        results = {}
        for metric in self.metrics:
            reasons = {str(v) for v in (by_split[s][metric] for s in SPLITS) if isinstance(v, NotApplicable)}
            if reasons:
                notes.append(f"{metric}: left out: {'; '.join(sorted(reasons))}")
                continue
            results[names.metric_name(metric, self.net.name)] = {split: by_split[split][metric] for split in SPLITS}
        return Evaluation(results, notes)

    def score(self, split: str, images: SplitImages, notes: list[str]) -> dict:
        """{metric: value, None (not computable, noted) or a NotApplicable} for one split's images."""
        generated: dict[str, Features] = {}
        knn: dict[str, tuple[float, float]] = {}

        def real_features(name: str) -> Features:
            if (split, name) not in self._real_features:
                self._real_features[split, name] = self.net(images.real[name], VALUE_RANGE)
            return self._real_features[split, name]

        def fake_features(name: str) -> Features:
            if name not in generated:
                generated[name] = self.net(images.generated[name][1], VALUE_RANGE)
            return generated[name]

        def two_set(metric: str, name: str, reference: str, fake: np.ndarray) -> float:
            if metric == "mmd":  # pixels, as gan-toolkit: at most 250 images of each set
                return m.mmd(images.real[reference][:MMD_MAX_SAMPLES], fake[:MMD_MAX_SAMPLES])
            if metric == "is":
                return m.inception_score(fake_features(name).probs)[0]
            x, y = real_features(reference).features, fake_features(name).features
            if metric == "kid":  # subsets as large as both sets are all the same set: one is enough
                size = min(KID_SUBSET_SIZE, len(x), len(y))
                return m.kid(x, y, 1 if size == len(x) == len(y) else KID_SUBSETS, KID_SUBSET_SIZE, self.seed)
            if metric == "fd":
                return m.frechet_distance(x, y)
            if name not in knn:
                knn[name] = m.precision_recall(x, y)
            return knn[name][0 if metric == "precision" else 1]

        def value(metric: str) -> float:
            if metric in names.RECONSTRUCTION_METRICS:
                if not images.reconstructions:
                    raise NotApplicable("the model gives no reconstructions")
                per_set = []
                for reference, recon in images.reconstructions.values():
                    a, b = (images.real[reference][:len(recon)] + 1.0) / 2.0, (recon + 1.0) / 2.0
                    per_set.append(np.mean(m.ssim(a, b) if metric == "ssim" else
                                           np.minimum(m.psnr(a, b), 10.0 * math.log10(1.0 / PSNR_MIN_MSE))))
                return float(np.mean(per_set))
            if not images.generated:
                raise NotApplicable("the model generates no images")
            return float(np.mean([two_set(metric, name, reference, fake)
                                  for name, (reference, fake) in images.generated.items()]))

        out = {}
        for metric in self.metrics:
            try:
                out[metric] = value(metric)
            except NotApplicable as reason:
                out[metric] = reason
            except (ValueError, np.linalg.LinAlgError) as err:
                notes.append(f"{names.metric_name(metric, self.net.name)} ({split}): not computed: {err}")
                out[metric] = None
        return out
