"""What an evaluation writes: `eval/metrics-<step>.json` (INTERFACE.md section 9's schema), the same scalars in
TensorBoard (`logs/eval`, tags `<metric>/<split>`), the train/val table on stdout, and the best step that a training
job's job.json records. TensorFlow-free but for `write_scalars`.
"""
from __future__ import annotations

from artifacts import jobs, storage
from trainer.evaluate import names

SPLITS = ("train", "val")
TENSORBOARD_DIR = f"{jobs.LOGS}/{jobs.EVAL}"  # logs/eval: its own TensorBoard run


def make_record(step: int, checkpoint: str, feature_net: str, num_samples: int, results: dict) -> dict:
    """The metrics file: {"step", "checkpoint", "feature_net", "num_samples", "metrics": {name: {"train", "val"}}}."""
    return {"step": int(step), "checkpoint": checkpoint, "feature_net": feature_net, "num_samples": int(num_samples),
            "metrics": {name: {split: values.get(split) for split in SPLITS} for name, values in results.items()}}


def write_record(job_dir: str, record: dict) -> str:
    """Write `JOB/eval/metrics-<step>.json`; returns its path."""
    path = jobs.metrics_path(job_dir, record["step"])
    storage.write_json(path, record)
    return path


def shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def table(results: dict) -> str:
    """One row per metric, a column per split ('-': not computed)."""
    width = max([len("metric"), *map(len, results)])
    lines = [f"{'metric':<{width}}  {'train':>10}  {'val':>10}"]
    for name, values in results.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{shown(values.get(split)):>10}" for split in SPLITS))
    return "\n".join(lines)


def write_scalars(writer, step: int, results: dict) -> None:
    """Each computed value as the scalar `<metric>/<split>` at `step`, into a tf.summary writer."""
    import tensorflow as tf

    with writer.as_default(step=int(step)):
        for name, values in results.items():
            for split in SPLITS:
                if values.get(split) is not None:
                    tf.summary.scalar(f"{name}/{split}", values[split])
    writer.flush()


def headline(results: dict) -> tuple[str, float] | None:
    """(name, value) of the first metric: its val value, else its train value; None when neither was computed."""
    for name, values in results.items():
        value = values.get("val") if values.get("val") is not None else values.get("train")
        return None if value is None else (name, value)
    return None


def best(previous: dict | None, step: int, results: dict) -> dict | None:
    """job.json's `best` after an evaluation at `step`: {"step", "metric", "value"} of the best step by the first
    metric (its val value, else train; lower is better for distances, higher for scores). A best by another metric
    (the metrics changed) is replaced."""
    first = headline(results)
    if first is None:
        return previous
    name, value = first
    if previous and previous.get("metric") == name and not names.better(name, value, previous.get("value")):
        return previous
    return {"step": int(step), "metric": name, "value": value}
