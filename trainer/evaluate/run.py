"""Evaluating a job: a checkpoint of a (local or gs://) job dir (`evaluate_job`, what `python -m trainer.evaluate`
runs once its arguments are checked), or the model in memory during training (`TrainingEvaluation`). Both write
`eval/metrics-<step>.json` and TensorBoard scalars in `logs/eval`; during training, job.json's best step too.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable

from artifacts import dataset, jobs, storage
from trainer.evaluate import names, report
from trainer.evaluate.evaluator import Evaluation, Evaluator


def data_dir_of(job_dir: str, configured: str) -> str:
    """The job's preprocessed data: its config's data dir, else the job dir's `data/`."""
    for candidate in (configured, storage.join(job_dir, jobs.DATA)):
        if candidate and dataset.find_manifest(candidate) is not None:
            return candidate
    raise FileNotFoundError(f"no preprocessed data for {job_dir}: neither {configured or '(none)'} nor "
                            f"{storage.join(job_dir, jobs.DATA)} holds a manifest.json")


def restore_step(model, job_dir: str, step: int) -> str:
    """Restore checkpoint `step` of the job (fetching only its files from gs://); returns its job-dir name."""
    from trainer.export import restore_checkpoint

    directory = storage.join(job_dir, jobs.CHECKPOINTS)
    prefix = os.path.basename(jobs.checkpoint_name(step))
    files = [name for name in storage.listdir(directory) if name.startswith(prefix + ".")]
    with storage.local_copy(directory, "genart-checkpoints-", files=files) as local:
        restore_checkpoint(model, os.path.join(local, prefix))
    return jobs.checkpoint_name(step)


def write_tensorboard(job_dir: str, step: int, results: dict) -> None:
    """The scalars into `JOB/logs/eval` (written locally, then uploaded for a gs:// job dir)."""
    import tensorflow as tf

    target = storage.join(job_dir, report.TENSORBOARD_DIR)
    with contextlib.ExitStack() as stack:
        local = target
        if storage.is_gcs(job_dir):
            local = storage.local_staging_dir("genart-eval-logs-")
            stack.callback(storage.rmtree, local)
        writer = tf.summary.create_file_writer(local)
        report.write_scalars(writer, step, results)
        writer.close()
        if local != target:
            storage.copytree(local, target)


def evaluate_job(job_dir: str, step: int, metrics: list[str], num_samples: int, feature_net: str,
                 inception_weights: str | None = None,
                 progress: Callable[[int], None] = lambda n: None) -> tuple[str, dict, Evaluation]:
    """Evaluate checkpoint `step` of the job; returns (the metrics file's path, its record, the evaluation)."""
    from trainer.evaluate.features import load_feature_net
    from trainer.export import load_job_config
    from trainer.models import model_class

    config = load_job_config(job_dir)
    model = model_class(config.model)(config)
    model.build_for_training()
    checkpoint = restore_step(model, job_dir, step)
    net = load_feature_net(feature_net, inception_weights)
    with storage.local_copy(data_dir_of(job_dir, config.data_dir), "genart-data-") as data_dir:
        evaluation = Evaluator(model, data_dir, net, metrics, num_samples, config.seed).evaluate(progress)
    record = report.make_record(step, checkpoint, net.name, num_samples, evaluation.results)
    path = report.write_record(job_dir, record)
    write_tensorboard(job_dir, step, evaluation.results)
    return path, record, evaluation


class TrainingEvaluation:
    """`--eval-every-steps N` inside the training loop (chief only): the digits feature net, `eval_num_samples`
    per split, `eval_metrics`; the real sets and their features are read once per run."""

    def __init__(self, model, data_dir: str, config, job: jobs.Job, eval_dir: str, log_dir: str,
                 message: Callable[[str], None] = print):
        import tensorflow as tf

        from trainer.evaluate.features import load_feature_net

        self.job, self.eval_dir, self.message = job, eval_dir, message
        self.evaluator = Evaluator(model, data_dir, load_feature_net("digits"),
                                   names.parse_metrics(config.eval_metrics), config.eval_num_samples, config.seed)
        self.writer = tf.summary.create_file_writer(log_dir)
        self._noted = False

    def run(self, step: int) -> Evaluation:
        """Evaluate the model as it is at `step` (its checkpoint just saved); returns the evaluation."""
        evaluation = self.evaluator.evaluate()
        if not self._noted:  # what is left out is the same every time
            for note in evaluation.notes:
                self.message(f"evaluation: {note}")
            self._noted = True
        record = report.make_record(step, jobs.checkpoint_name(step), self.evaluator.net.name,
                                    self.evaluator.num_samples, evaluation.results)
        storage.write_json(os.path.join(self.eval_dir, jobs.metrics_name(step)), record)
        report.write_scalars(self.writer, step, evaluation.results)
        best = report.best(self.job.record.get(jobs.BEST), step, evaluation.results)
        if best is not None:
            self.job.update(**{jobs.BEST: best})
        return evaluation


def summary_line(results: dict) -> str:
    """'kid_digits 0.0123 (val)' for a progress line ('' when nothing was computed)."""
    first = report.headline(results)
    if first is None:
        return ""
    name, value = first
    split = "val" if results[name].get("val") is not None else "train"
    return f"{name} {report.shown(value)} ({split})"

