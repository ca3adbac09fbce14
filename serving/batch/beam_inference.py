"""The Beam half of batch prediction: the project's `ModelHandler`, the pipeline graph and its counters.

    input files -> ranges -> reshuffle -> (Source, line) -> JSON instance ─┬─> RunInference(handler) ─┬─> results
                            not JSON, or the unread rest of a file ──────┴──────────> errors <──────┘ (+ DLQ)

- `SavedModelHandler`, the project's Beam `ModelHandler`: loads the SavedModel once per worker process through
  `serving.server.core.load_model` (a `gs://` export is copied to a local temp dir first) and runs batches of
  `--batch-size` keyed examples `(Source, instance)`. Each instance is validated on its own
  (`core.prepare_instances`, its signature chosen by its own input names unless `--signature-name`, its missing key
  filled with `<input_path>:<line>`), the valid ones of each signature run in one graph call (`core.run_isolated`:
  a batch the graph rejects is retried one by one), so a bad line fails only itself, never its batch. Whatever
  still escapes a batch goes to RunInference's dead-letter output (`with_exception_handling`) and becomes one
  error line per instance of that batch: every instance read is in exactly one of the two outputs.
- `pipeline_options`: on the DirectRunner, unless either `--direct_*` option is given, the job runs
  `multi_threading` with min(4, max(2, CPUs)) workers: Beam's default (`in_memory`, one thread) leaves the CPU idle
  while Python parses and validates, and measured slower here (bench/batch_throughput.py).
- Progress: a line on stderr every few seconds from each worker process (instances done, failed, rate).

Files in and out, and the key rule, are `serving.batch.beam_io`'s; the command line is `serving.batch.cli`'s.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
import uuid
from typing import Any, Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from artifacts import storage
from artifacts.export import KEY
from serving.batch import beam_io
from serving.batch.beam_io import Source
from serving.batch.options import DEFAULT_BATCH_SIZE, TEXT
from serving.server import core
from serving.server import values as V

PROGRESS_EVERY_S = 5.0
MAIN_PID_ENV = "GENART_BATCH_PREDICT_PID"  # lets worker processes label their progress lines


def _drop_beam_resource_warning(record: logging.LogRecord) -> bool:
    """Beam 2.77's RunInference imports its model manager (which needs torch) together with `resource`; without
    torch it warns on every model load that memory usage cannot be fetched. Noise here: drop it."""
    return not record.getMessage().startswith("Resource module is not available")


logging.getLogger().addFilter(_drop_beam_resource_warning)


# ---------------------------------------------------------------- the model handler


def _input_names(instance: Any) -> set[str] | None:
    return set(instance) if isinstance(instance, dict) and not V.is_b64_object(instance) else None


def with_default_key(signature: core.Signature, instance: Any, key: str) -> Any:
    """The instance with `key` added where the signature takes a fillable key and the instance has none."""
    if not signature.fills_key:
        return instance
    if _input_names(instance) is not None:
        return instance if KEY in instance else {**instance, KEY: key}
    if len(signature.required) == 1:  # a bare value for a one-input signature
        return {signature.required[0]: instance, KEY: key}
    return instance  # core reports what is wrong with it


class SavedModelHandler(ModelHandler):
    """Beam ModelHandler over `serving.server.core`: examples are `(Source, JSON instance)`, predictions
    `(Source, PredictionResult(example=key, inference=JSON row | core.InstanceError))`."""

    def __init__(self, model_dir: str, signature_name: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 model_name: str = "", version: int = 0):
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)
        self._model_dir, self._signature_name = model_dir, signature_name
        self._model_name, self._version = model_name, version

    def load_model(self) -> core.LoadedModel:
        return core.load_model(_local_copy(self._model_dir), self._model_name, self._version)

    def run_inference(self, batch: Sequence[tuple[Source, Any]], model: core.LoadedModel,
                      inference_args: dict | None = None) -> list[tuple[Source, PredictionResult]]:
        outcomes: list = [None] * len(batch)
        groups: dict[tuple, tuple[core.Signature, list]] = {}  # same signature and shapes -> one graph call
        for position, (source, instance) in enumerate(batch):
            try:
                signature = core.choose_signature(model, _input_names(instance), self._signature_name)
                filled = with_default_key(signature, instance, source.default_key)
                _, (prepared,) = core.prepare_instances(model, [filled], signature.name, first_index=source.line)
            except core.InvalidInput as err:
                prepared = core.InstanceError(source.line, str(err))
            if isinstance(prepared, core.InstanceError):
                outcomes[position] = prepared
                continue
            shapes = tuple((alias, value.shape) for alias, value in prepared.values.items())
            groups.setdefault((signature.name, shapes), (signature, []))[1].append((position, prepared))
        for signature, members in groups.values():
            for (position, _), outcome in zip(members, _run_group(signature, [m[1] for m in members])):
                outcomes[position] = outcome
        return [(source, PredictionResult(beam_io.instance_key(instance, source), outcome))
                for (source, instance), outcome in zip(batch, outcomes)]

    def get_metrics_namespace(self) -> str:
        return "genart.batch_predict.RunInference"


def _run_group(signature: core.Signature, prepared: list[core.Instance]) -> list[dict | core.InstanceError]:
    """Valid instances of one signature -> a row or an InstanceError each (never raises for input problems)."""
    try:
        return core.run_isolated(signature, prepared)
    except core.InvalidInput as err:  # run_isolated re-raises for a lone instance
        return [core.InstanceError(prepared[0].index, f"instance {prepared[0].index}: {err}")]
    except core.PredictionError as err:
        return [core.InstanceError(p.index, f"prediction failed for the {len(prepared)} instances run together: "
                                            f"{err}") for p in prepared]


_local_copies: dict[str, str] = {}
_local_copies_lock = threading.Lock()
_local_copies_kept = contextlib.ExitStack()  # removed when the worker process exits
atexit.register(_local_copies_kept.close)


def _local_copy(model_dir: str) -> str:
    """A local dir holding the SavedModel (a `gs://` export is downloaded once per process)."""
    with _local_copies_lock:
        if model_dir not in _local_copies:
            _local_copies[model_dir] = _local_copies_kept.enter_context(
                storage.local_copy(model_dir, "genart-batch-model-"))
        return _local_copies[model_dir]


# ---------------------------------------------------------------- outcomes, progress


class _Progress:
    """One job's progress in this process: a line on stderr at most every PROGRESS_EVERY_S seconds."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done = self._failed = 0
        self._start = self._last = None

    def add(self, failed: bool) -> None:
        with self._lock:
            now = time.monotonic()
            if self._start is None:
                self._start = self._last = now
            self._done += 1
            self._failed += failed
            if now - self._last >= PROGRESS_EVERY_S:
                self._last = now
                who = "" if str(os.getpid()) == os.environ.get(MAIN_PID_ENV) else f" [worker {os.getpid()}]"
                print(f"batch_predict{who}: {self._done:,} instances done ({self._failed:,} failed), "
                      f"{self._done / max(now - self._start, 1e-9):,.1f} instances/s", file=sys.stderr, flush=True)


_progress_by_job: dict[str, _Progress] = {}
_progress_lock = threading.Lock()


def progress(job_id: str) -> _Progress:
    """The progress of job `job_id` in this process (several jobs may run in one process, one after another)."""
    with _progress_lock:
        return _progress_by_job.setdefault(job_id, _Progress())


class SplitOutcomes(beam.DoFn):
    """(Source, PredictionResult) -> the JSON row, or an error record on `ERRORS_TAG`; counts both."""

    def __init__(self, job_id: str):
        self._job_id = job_id
        self._predicted = beam.metrics.Metrics.counter(beam_io.METRICS_NAMESPACE, "predicted")
        self._failed = beam.metrics.Metrics.counter(beam_io.METRICS_NAMESPACE, "failed")

    def process(self, element):
        source, result = element
        failed = isinstance(result.inference, core.InstanceError)
        progress(self._job_id).add(failed)
        if failed:
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(beam_io.ERRORS_TAG,
                                           beam_io.error_record(source, result.example, result.inference.message))
        else:
            self._predicted.inc()
            yield result.inference


class FailedBatchErrors(beam.DoFn):
    """RunInference's dead letters `(batch, (type, repr, traceback))` -> one error record per instance."""

    def __init__(self, job_id: str):
        self._job_id = job_id
        self._failed = beam.metrics.Metrics.counter(beam_io.METRICS_NAMESPACE, "failed")

    def process(self, element):
        batch, (_, message, _) = element
        for source, instance in batch:
            self._failed.inc()
            progress(self._job_id).add(True)
            yield beam_io.error_record(source, beam_io.instance_key(instance, source),
                                       f"prediction failed for the batch of {len(batch)} holding this instance: "
                                       f"{message}")


# ---------------------------------------------------------------- the pipeline


def build_pipeline(pipeline: beam.Pipeline, input_files: list[str], output_path: str, handler: SavedModelHandler,
                   data_format: str = TEXT) -> None:
    """Input files -> predictions and error records under `output_path` (INTERFACE.md section 7)."""
    parsed = (pipeline
              | "InputFiles" >> beam.Create(input_files)
              | "ReadInstances" >> beam_io.ReadInstances(data_format)
              | "ParseInstances" >> beam.ParDo(beam_io.ParseInstances(data_format)).with_outputs(
                  beam_io.ERRORS_TAG, main="instances"))
    inferred, dead_letters = (parsed.instances
                              | "Predict" >> RunInference(handler).with_exception_handling())
    job_id = uuid.uuid4().hex
    outcomes = inferred | "SplitOutcomes" >> beam.ParDo(SplitOutcomes(job_id)).with_outputs(beam_io.ERRORS_TAG,
                                                                                           main="results")
    failed_batches = dead_letters.failed_inferences | "FailedBatches" >> beam.ParDo(FailedBatchErrors(job_id))
    _ = outcomes.results | "WriteResults" >> beam_io.WriteJsonLines(output_path, beam_io.RESULTS_PREFIX)
    _ = ((parsed[beam_io.ERRORS_TAG], outcomes[beam_io.ERRORS_TAG], failed_batches)
         | "AllErrors" >> beam.Flatten()
         | "WriteErrors" >> beam_io.WriteJsonLines(output_path, beam_io.ERRORS_PREFIX))


def counter_totals(result) -> dict[str, int]:
    """The pipeline's genart counters {name: total} (committed values where the runner has them)."""
    totals: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(beam_io.METRICS_NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return totals


# ---------------------------------------------------------------- command line


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Beam options from the leftover arguments; on the DirectRunner, worker threads unless told otherwise."""
    options = PipelineOptions(beam_args)
    runner = options.view_as(StandardOptions).runner
    given = {arg.lstrip("-").split("=", 1)[0] for arg in beam_args if arg.startswith("--")}
    if (runner or "DirectRunner").lower() in ("directrunner", "direct") and \
            not given & {"direct_running_mode", "direct_num_workers"}:
        direct = options.view_as(DirectOptions)
        direct.direct_running_mode = "multi_threading"
        direct.direct_num_workers = min(4, max(2, os.cpu_count() or 1))
    return options
