"""The training loop shared by every model: it talks to a `GenerativeModel` only through `trainer/models/base.py`.

Owns: the distributed step (`strategy.run(model.train_step)`, losses SUM-reduced over replicas; XLA only on GPU;
`--steps-per-execution K`: up to K steps per call into TensorFlow, the non-finite and stop checks in the graph, each
call cut at the next step where the host has work (summary, samples, evaluation, checkpoint, the last step); the
networks built under the `--precision` policy (`trainer/precision.py`); on CPUs, a step's independent branches side
by side (`trainer/threads.py`)),
checkpoints (`tf.train.Checkpoint(step, **model.checkpoint_items())` in `checkpoints/`, every
`checkpoint_every_steps`, at the end, and on SIGINT/SIGTERM), resume, TensorBoard summaries in `logs/`, sample
grids in `samples/step_NNNNNNN.png`, evaluations every `eval_every_steps` (`trainer.evaluate.run`, after saving
that step's checkpoint), the progress line, `job.json` states, and the export (of the final step) at the end.

Resume, exactly what is restored:
- networks, optimizers (slots and iteration counts), the step, the model's fixed sample noise: from the checkpoint;
- the model's training randomness: models draw it statelessly from (seed, step, replica), so it continues
  exactly where it stopped;
- the data position: not restored. The input pipeline's shuffle and crop seeds are re-derived from (seed, resumed
  step), so a resumed run reads a fresh, reproducible order instead of replaying the start of the stream. (An
  infinitely repeated, shuffled stream of random crops has no useful position; restoring the tf.data iterator
  would put the shuffle buffer into every checkpoint.)
Steps done after the last checkpoint of a killed run are done again, from that checkpoint.

A non-finite loss, or a non-finite variable after a step (NaN/Inf gradients behind finite losses), stops the job
(FAILED, the error names the step); that state is never saved nor exported, so the last checkpoint is the last
finite one and a rerun resumes from it. With several workers every stop decision (max steps, non-finite values,
a signal on any worker) is taken from all-reduced values, so all workers stop at the same step.
Input: each input pipeline (worker) builds its own dataset (`distribute_datasets_from_function`), reading only its
shard of the records, batched by the per-replica batch.
"""
from __future__ import annotations

import dataclasses
import math
import os
import signal
import time

import keras
import tensorflow as tf

from artifacts import jobs, storage
from artifacts.jobs import CHECKPOINTS, EVAL, LOGS, SAMPLES
from trainer import distribute, export, precision, threads
from trainer.config import TrainConfig
from trainer.jobdir import JobDir
from trainer.models import model_class
from trainer.models.base import GenerativeModel
from trainer.progress import Progress
from trainer.step_function import StepFunction

CHECKPOINTS_TO_KEEP = 3
SIGNAL_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class NonFiniteLoss(RuntimeError):
    pass


@dataclasses.dataclass
class TrainResult:
    state: str
    step: int
    model: GenerativeModel
    exit_code: int = 0
    first_step_seconds: float | None = None       # tracing + the first step of this run
    images_per_second: float | None = None        # this run, after its first step, everything included
    metrics: dict[int, dict[str, float]] = dataclasses.field(default_factory=dict)  # step -> validation metrics
    export_dir: str | None = None


class StopSignals:
    """SIGINT/SIGTERM ask the loop to stop after the current step (a second SIGINT interrupts at once)."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def install(self) -> "StopSignals":
        for signum in SIGNAL_EXIT_CODES:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def data_seed(seed: int, step: int) -> int:
    """The global TF seed for the input pipeline of a run that starts at `step`."""
    return (seed * 1_000_003 + step) % (2 ** 31 - 1)


def compose_grids(grids: dict[str, tf.Tensor], gap: int = 4) -> tf.Tensor:
    """Named uint8 grids stacked vertically (left-aligned, black gaps) into one image for samples/."""
    width = max(int(g.shape[1]) for g in grids.values())
    parts = []
    for grid in grids.values():
        parts.append(tf.pad(grid, [[0, gap], [0, width - int(grid.shape[1])], [0, 0]]))
    return tf.concat(parts, axis=0)[:-gap] if gap else tf.concat(parts, axis=0)


class Trainer:
    def __init__(self, config: TrainConfig, args=(), stream=None):
        self.config = config
        # Thread pools are fixed when TensorFlow starts; MultiWorkerMirroredStrategy must exist before any other op.
        self.threads = threads.split_for_branches(model_class(config.model).parallel_branches(config))
        self.strategy = distribute.make_strategy(config.strategy)
        self.chief = distribute.is_chief(self.strategy)
        self.job = jobs.Job.open(config.job_dir, writable=self.chief, model=config.model,
                                 data_dir=config.data_dir, max_steps=config.max_steps, args=list(args))
        self.job.update(state=jobs.PREPARING, ended=None, error=None)
        self.dirs = JobDir(config.job_dir, self.chief)
        self.progress = Progress(config.max_steps, config.batch_size, config.summary_every_steps, stream)
        self.signals = StopSignals()
        self.last_saved: int | None = None
        self.last_evaluated: int | None = None
        self.last_refreshed: int | None = None
        self.evaluation = None  # trainer.evaluate.run.TrainingEvaluation, on the chief with --eval-every-steps

    # ---------------------------------------------------------------- set-up

    def prepare(self) -> None:
        config, strategy = self.config, self.strategy
        replicas = strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise ValueError(f"--batch-size {config.batch_size} must be divisible by the {replicas} replicas")
        if self.chief:
            storage.write_text(jobs.config_path(config.job_dir), config.to_json())
        self.data_dir = self.dirs.stage_data(config.data_dir)
        keras.utils.set_random_seed(config.seed)  # identical initial weights for identical configs
        with strategy.scope(), precision.policy(config.precision):
            self.model = model_class(config.model)(config)
            self.model.build_for_training()
            self.step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(step=self.step_var, **self.model.checkpoint_items())
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.dirs.local(CHECKPOINTS),
                                                  max_to_keep=CHECKPOINTS_TO_KEEP)
        self.step = self._restore()
        tf.random.set_seed(data_seed(config.seed, self.step))
        self.iterator = iter(strategy.distribute_datasets_from_function(
            lambda context: self.model.make_train_dataset(self.data_dir, config.batch_size, input_context=context)))
        self.step_fn = StepFunction(strategy, self.model, config.jit_compile)
        self.fixed = self.model.fixed_batch(self.data_dir) if self.chief else None
        self.writer = (tf.summary.create_file_writer(self.dirs.local(LOGS)) if self.chief
                       else tf.summary.create_noop_writer())
        self.eval_every, self.eval_at_end = config.evaluation_interval()
        if self.eval_every and self.chief:
            from trainer.evaluate.run import TrainingEvaluation

            self.evaluation = TrainingEvaluation(self.model, self.data_dir, config, self.job, self.dirs.local(EVAL),
                                                 self.dirs.local(LOGS, EVAL), self.progress.message)

    def _restore(self) -> int:
        latest = tf.train.latest_checkpoint(self.dirs.restore_dir())
        if not latest:
            return 0
        export.restore_checkpoint(self.model, latest, step=self.step_var)
        step = int(self.step_var.numpy())
        self.last_saved = step
        self.progress.message(f"resumed from {latest} at step {step}")
        return step

    def _steps_this_call(self) -> int:
        """--steps-per-execution, cut at the next step where the host has something to do (a summary, sample grid,
        evaluation, checkpoint, the last step); 1 for a run's first step (timed on its own: tracing)."""
        config, step = self.config, self.step
        if self.first_call:
            return 1
        intervals = [config.summary_every_steps, config.sample_every_steps, config.checkpoint_every_steps,
                     self.eval_every]
        next_stop = min([config.max_steps] + [(step // every + 1) * every for every in intervals if every])
        return max(1, min(config.steps_per_execution, next_stop - step))

    # ---------------------------------------------------------------- the loop

    def run(self) -> TrainResult:
        config = self.config
        result = TrainResult(state=jobs.RUNNING, step=self.step, model=self.model)
        self.job.set_state(jobs.RUNNING, step=self.step)
        self.progress.message(f"training {config.model} on {distribute.worker_description(self.strategy)}, "
                              f"step {self.step} -> {config.max_steps}, job dir {config.job_dir}"
                              + (f" ({self.threads})" if self.threads else ""))
        if self.step == 0:
            self._write_samples(0, result)
        run_started = time.perf_counter()
        interval = _Interval(self.step, run_started, config.batch_size)
        self.first_call = True
        while self.step < config.max_steps:
            started = time.perf_counter()
            vote = 1.0 if self.signals.received is not None else 0.0
            rows = self.step_fn(self.iterator, vote, self._steps_this_call()).numpy()
            now = time.perf_counter()
            for values in rows:
                if self._after_step(values, result, interval, run_started, started, now, len(rows)):
                    return self._cancel(result)
            self.first_call = False
        self.save()
        if self.eval_at_end and self.last_evaluated != self.step:
            self._evaluate()
        self.progress.close_line()
        result.step = self.step
        result.export_dir = self._export()
        self.job.set_state(jobs.SUCCEEDED, step=self.step)
        self.dirs.push()
        result.state = jobs.SUCCEEDED
        where = f"; SavedModel in {result.export_dir}" if result.export_dir and self.chief else ""
        self.progress.message(f"finished at step {self.step}{where}")
        return result

    def _after_step(self, values, result: TrainResult, interval: "_Interval", run_started: float, started: float,
                    now: float, steps_in_call: int) -> bool:
        """The host's share of one finished step (`values`: its all-reduced row); True: a worker asked to stop."""
        config = self.config
        self.step += 1
        losses = {name: float(v) for name, v in zip(self.step_fn.loss_names, values[:-2])}
        first_step = result.first_step_seconds is None
        if first_step:  # tracing: timed on its own, left out of every rate
            result.first_step_seconds = now - run_started
            interval.restart_clock(self.step, now)
        else:
            result.images_per_second = interval.run_images_per_second(self.step, now)
        if values[-1] > 0 or not all(math.isfinite(v) for v in losses.values()):
            raise NonFiniteLoss(self._non_finite_message(losses))  # before anything is saved
        self.progress.update(self.step, losses, None if first_step else (now - started) / steps_in_call)
        interval.add(losses)
        if self.step % config.summary_every_steps == 0:
            self._write_scalars(interval.flush(self.step, now))
        if self.step % config.sample_every_steps == 0:
            self._write_samples(self.step, result)
        if self.eval_every and self.step % self.eval_every == 0:
            self._evaluate()
        if values[-2] > 0:  # some worker got SIGINT/SIGTERM: save and stop, all at this step
            return True
        if self.step % config.checkpoint_every_steps == 0:
            self.save()
        return False

    def _non_finite_message(self, losses: dict[str, float]) -> str:
        bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
        kept = (f"the last good checkpoint is step {self.last_saved}" if self.last_saved is not None
                else "no checkpoint was saved")
        what = f"loss at step {self.step} ({bad})" if bad else \
            f"weights at step {self.step} (finite losses: NaN/Inf gradients)"
        return f"non-finite {what}; training stopped, nothing of this step saved, {kept}"

    def _cancel(self, result: TrainResult) -> TrainResult:
        self.save()
        name = signal.Signals(self.signals.received).name if self.signals.received else "a signal on another worker"
        self.job.set_state(jobs.CANCELLED, step=self.step, error=f"cancelled by {name} at step {self.step}")
        self.dirs.push()
        self.progress.message(f"cancelled by {name}: checkpoint saved at step {self.step}")
        result.state, result.step = jobs.CANCELLED, self.step
        result.exit_code = SIGNAL_EXIT_CODES.get(self.signals.received, 130)
        return result

    # ---------------------------------------------------------------- outputs

    def save(self) -> None:
        """Checkpoint the current step (once), then sync the job dir up when it is remote."""
        if self.last_saved == self.step:
            return
        self._refresh_sampling()
        self.step_var.assign(self.step)
        path = self.manager.save(checkpoint_number=self.step)
        self.last_saved = self.step
        self.writer.flush()
        if self.chief:
            self.job.update(step=self.step)
            self.dirs.push()
            self.progress.message(f"checkpoint {path}")

    def _evaluate(self) -> None:
        """Checkpoint this step (every worker), then evaluate it (the chief): eval/, logs/eval, job.json's best."""
        self.save()
        self.last_evaluated = self.step
        if self.evaluation is None:
            return
        from trainer.evaluate.run import summary_line

        started = time.perf_counter()
        self.progress.note = summary_line(self.evaluation.run(self.step).results)
        self.progress.message(f"evaluation at step {self.step}: {self.progress.note or 'nothing computed'} "
                              f"({time.perf_counter() - started:.1f} s)")
        self.dirs.push()

    def _write_scalars(self, scalars: dict[str, float]) -> None:
        if not self.chief:
            return
        rates = self.model.learning_rates(self.step)
        with self.writer.as_default(step=self.step):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
            for name, value in rates.items():
                tf.summary.scalar(f"learning_rate/{name}", value)
        self.job.update(step=self.step)

    def _write_samples(self, step: int, result: TrainResult) -> None:
        if not self.chief:
            return
        metrics = self._refresh_sampling()
        grids = self.model.sample_grids(self.fixed)
        metrics.update(self.model.validation_metrics(self.fixed))
        result.metrics[step] = metrics
        with self.writer.as_default(step=step):
            for name, grid in grids.items():
                tf.summary.image(name, grid[None], max_outputs=1)
            for name, value in metrics.items():
                tf.summary.scalar(f"eval/{name}", value)
        png = tf.io.encode_png(compose_grids(grids)).numpy()
        storage.write_bytes(os.path.join(self.dirs.local(SAMPLES), jobs.sample_name(step)), png)

    def _refresh_sampling(self) -> dict[str, float]:
        """The model's `refresh_sampling`, once per step (at sample grids and checkpoints)."""
        if self.last_refreshed == self.step:
            return {}
        self.last_refreshed = self.step
        return dict(self.model.refresh_sampling(self.data_dir))

    def _export(self) -> str | None:
        """Write the SavedModel (every worker, as TF asks; non-chiefs into their throwaway dir)."""
        target = self.config.job_dir if self.chief else self.dirs.root
        self._refresh_sampling()
        try:
            return export.export_model(export.float32_twin(self.model), target)
        except Exception as err:
            raise RuntimeError(f"training finished at step {self.step} but the export failed: {err}") from err


class _Interval:
    """Loss means and step rate between two summaries (and the images/s of the whole run)."""

    def __init__(self, step: int, now: float, batch_size: int):
        self.batch_size = batch_size
        self.sums: dict[str, float] = {}
        self.count = 0
        self.restart_clock(step, now)

    def restart_clock(self, step: int, now: float) -> None:
        self.start_step, self.started = step, now
        self.run_start_step, self.run_started = step, now

    def run_images_per_second(self, step: int, now: float) -> float:
        return (step - self.run_start_step) * self.batch_size / max(now - self.run_started, 1e-9)

    def add(self, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def flush(self, step: int, now: float) -> dict[str, float]:
        scalars = {f"loss/{name}": total / self.count for name, total in self.sums.items()}
        if step > self.start_step:
            rate = (step - self.start_step) / max(now - self.started, 1e-9)
            scalars.update(steps_per_second=rate, images_per_second=rate * self.batch_size)
        self.sums, self.count, self.start_step, self.started = {}, 0, step, now
        return scalars


def train(config: TrainConfig, args=(), stream=None) -> TrainResult:
    """Run (or resume) one training job to the end; job.json says how it ended.

    Raises on failure after marking the job FAILED (or CANCELLED for a KeyboardInterrupt).
    """
    trainer = Trainer(config, args, stream)
    trainer.signals.install()
    try:
        trainer.prepare()
        return trainer.run()
    except KeyboardInterrupt:
        trainer.job.set_state(jobs.CANCELLED, error="interrupted before a checkpoint could be saved")
        raise
    except BaseException as err:
        trainer.progress.close_line()
        try:  # record the failure; never let a second error (say, the bucket) hide the first
            trainer.job.set_state(jobs.FAILED, error=str(err) or type(err).__name__)
            trainer.dirs.push()
        except Exception as secondary:
            trainer.progress.message(f"could not record the failure in job.json: {secondary}")
        raise
    finally:
        trainer.signals.restore()
        trainer.dirs.cleanup()
