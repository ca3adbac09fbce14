"""Where graph calls run: per loaded version and signature, a bounded queue and its worker threads.

Every request's batch runs here, batching on or off, so memory and time stay bounded the same way:
- a request of more than `max_batch_size` instances is split into tasks of at most `max_batch_size` (never
  refused, never one oversized graph call) and its outputs are joined again;
- the queue holds at most `max_enqueued_batches` batches; a request that does not fit is refused at once with
  Unavailable (503 / UNAVAILABLE, as TF Serving's batcher);
- a caller waits for its tasks until its deadline only (then DeadlineExceeded: 504 / DEADLINE_EXCEEDED); a
  task still queued then is withdrawn, and a worker skips tasks whose deadline has passed, so a hung graph call
  holds its worker threads, never the request threads; `oldest_call_seconds` lets `/readyz` report it.
With `merge` (`--enable-batching`), a worker takes the oldest task and, waiting up to `batch_timeout_micros`,
the following ones of the same input shapes up to `max_batch_size` instances, runs one graph call on them all and
hands every task its own slice of the outputs; if the graph rejects a merged batch for something an instance can
cause, its tasks are re-run one by one, so one bad request never fails the others. Closing drains the queues.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from serving.server.limits import remaining
from serving.server.model import INSTANCE_ERRORS, DeadlineExceeded, Signature, Unavailable, run_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    num_batch_threads: int = max(1, min(4, os.cpu_count() or 1))
    max_enqueued_batches: int = 100
    merge: bool = True  # False: every task runs alone (no --enable-batching)

    def __post_init__(self):
        if min(self.max_batch_size, self.num_batch_threads, self.max_enqueued_batches) < 1 or \
                self.batch_timeout_micros < 0:
            raise ValueError("max_batch_size, num_batch_threads and max_enqueued_batches must be >= 1, "
                             "batch_timeout_micros >= 0")


QUEUED, RUNNING, WITHDRAWN = "queued", "running", "withdrawn"


class _Task:
    __slots__ = ("batch", "size", "shapes", "deadline", "state", "done", "result", "error")

    def __init__(self, batch: dict[str, np.ndarray], deadline: float | None):
        self.batch, self.size, self.deadline = batch, _size(batch), deadline
        self.shapes = tuple((a, v.shape[1:], v.dtype.str) for a, v in sorted(batch.items()))
        self.state, self.done = QUEUED, threading.Event()
        self.result: dict[str, np.ndarray] | None = None
        self.error: BaseException | None = None

    def finish(self, result=None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


def _size(batch: dict[str, np.ndarray]) -> int:
    return next((len(v) for v in batch.values() if np.ndim(v)), 0)


def split(batch: dict[str, np.ndarray], max_size: int) -> list[dict[str, np.ndarray]]:
    """A batch of more than `max_size` instances -> consecutive batches of at most `max_size` (views, no copy)."""
    size = _size(batch)
    if size <= max_size:
        return [batch]
    return [{a: v[start:start + max_size] for a, v in batch.items()} for start in range(0, size, max_size)]


class _Queue:
    """The tasks of one signature and the worker threads that run them."""

    def __init__(self, signature: Signature, options: BatchingOptions, observe: Callable[[Signature, int], None]):
        self.signature, self.options, self.observe = signature, options, observe
        self.items: deque[_Task] = deque()
        self.rows = 0  # instances queued
        self.cond = threading.Condition()
        self.collecting = threading.Lock()  # one worker gathers a batch at a time; the others run theirs
        self.running: dict[int, float] = {}  # worker thread id -> monotonic start of its graph call
        self.closed = False
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"batch-{signature.name}-{i}")
                        for i in range(options.num_batch_threads)]
        for thread in self.threads:
            thread.start()

    def _batches(self, rows: int, tasks: int) -> int:
        return math.ceil(rows / self.options.max_batch_size) if self.options.merge else tasks

    def submit(self, tasks: list[_Task]) -> None:
        """Queue all of `tasks` or none (Unavailable when the queue is full; RuntimeError when closed)."""
        rows = sum(task.size for task in tasks)
        with self.cond:
            if self.closed:
                raise RuntimeError("batcher closed")
            limit = self.options.max_enqueued_batches
            if self._batches(self.rows + rows, len(self.items) + len(tasks)) > limit:
                raise Unavailable(f"The batch scheduling queue of signature '{self.signature.name}' is full "
                                  f"({limit} batches, --max-enqueued-batches); try again later")
            self.items.extend(tasks)
            self.rows += rows
            self.cond.notify(len(tasks))

    def withdraw(self, task: _Task) -> None:
        with self.cond:
            if task.state == QUEUED:
                task.state = WITHDRAWN
                self.items.remove(task)
                self.rows -= task.size

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _pop(self) -> _Task:
        task = self.items.popleft()
        self.rows -= task.size
        task.state = RUNNING
        return task

    def _next(self) -> list[_Task] | None:
        limit, timeout = self.options.max_batch_size, self.options.batch_timeout_micros / 1e6
        with self.collecting, self.cond:
            while not self.items:
                if self.closed:
                    return None
                self.cond.wait(0.5)
            batch = [self._pop()]
            rows, deadline = batch[0].size, time.monotonic() + timeout
            while self.options.merge and 0 < rows < limit:
                if self.items:
                    head = self.items[0]
                    if head.shapes != batch[0].shapes or rows + head.size > limit:
                        break
                    batch.append(self._pop())
                    rows += head.size
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    break
                self.cond.wait(left)
            return batch

    def _work(self) -> None:
        while True:
            batch = self._next()
            if batch is None:
                return
            expired = [t for t in batch if t.deadline is not None and remaining(t.deadline) == 0]
            for task in expired:
                task.finish(error=DeadlineExceeded("the request's deadline passed while it was queued"))
            live = [t for t in batch if t not in expired]
            if live:
                self._run(live)

    def _run(self, tasks: list[_Task]) -> None:
        me = threading.get_ident()
        with self.cond:
            self.running[me] = time.monotonic()
        try:
            merged = tasks[0].batch if len(tasks) == 1 else \
                {a: np.concatenate([t.batch[a] for t in tasks]) for a in tasks[0].batch}
            outputs = run_batch(self.signature, merged)
            self.observe(self.signature, sum(t.size for t in tasks))
            start = 0
            for task in tasks:
                task.finish({a: v[start:start + task.size] for a, v in outputs.items()})
                start += task.size
        except INSTANCE_ERRORS as err:
            if len(tasks) == 1:
                tasks[0].finish(error=err)
            else:
                for task in tasks:  # isolate the guilty request
                    self._run([task])
        except BaseException as err:  # noqa: BLE001 - handed to the waiting request threads
            for task in tasks:
                task.finish(error=err)
        finally:
            with self.cond:
                self.running.pop(me, None)

    def oldest_call_seconds(self) -> float:
        with self.cond:
            starts = list(self.running.values())
        return time.monotonic() - min(starts) if starts else 0.0


class Batcher:
    """Runs the batches of one loaded model version. `run(signature, batch, deadline)` blocks for its own
    outputs until `deadline` (monotonic; None: no deadline)."""

    def __init__(self, options: BatchingOptions, observe: Callable[[Signature, int], None] | None = None):
        self.options = options
        self.observe = observe or (lambda signature, size: None)
        self.queues: dict[str, _Queue] = {}
        self.lock = threading.Lock()
        self.closed = False

    def run(self, signature: Signature, batch: dict[str, np.ndarray], deadline: float | None = None
            ) -> dict[str, np.ndarray]:
        tasks = [_Task(chunk, deadline) for chunk in split(batch, self.options.max_batch_size)]
        with self.lock:
            queue = None if self.closed else self.queues.get(signature.name)
            if queue is None and not self.closed:
                queue = self.queues[signature.name] = _Queue(signature, self.options, self.observe)
        try:
            if queue is None:
                raise RuntimeError("batcher closed")
            queue.submit(tasks)
        except RuntimeError:  # closed (its version is being unloaded): run here
            return self._join([self._run_here(signature, t.batch) for t in tasks])
        try:
            for task in tasks:
                if not task.done.wait(remaining(deadline)):
                    raise DeadlineExceeded("the request's deadline passed before the model answered")
                if task.error is not None:
                    raise task.error
        except BaseException:
            for task in tasks:
                queue.withdraw(task)
            raise
        return self._join([task.result for task in tasks])

    def _run_here(self, signature: Signature, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = run_batch(signature, batch)
        self.observe(signature, _size(batch))
        return outputs

    @staticmethod
    def _join(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return parts[0] if len(parts) == 1 else {a: np.concatenate([p[a] for p in parts]) for a in parts[0]}

    def oldest_call_seconds(self) -> float:
        """How long the longest-running graph call of this version has been running (0: none running)."""
        with self.lock:
            queues = list(self.queues.values())
        return max((q.oldest_call_seconds() for q in queues), default=0.0)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            queues, self.queues = list(self.queues.values()), {}
        for queue in queues:
            queue.close()
