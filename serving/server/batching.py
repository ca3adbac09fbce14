"""Request batching (`--enable-batching --max-batch-size --batch-timeout-micros`), like TF Serving's batcher.

Concurrent requests for the same loaded version, signature and per-instance input shapes are queued; a worker
takes the oldest request, waits up to `batch_timeout_micros` for more (never beyond `max_batch_size` instances),
runs one graph call on the concatenated inputs and hands every request its own slice of the outputs. A request
of `max_batch_size` instances or more runs on its own. If the graph rejects a merged batch, its requests are
re-run one by one, so one bad request never fails the others. Closing drains the queues (nothing is dropped).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from serving.server.model import InvalidInput, Signature, run_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    num_batch_threads: int = max(1, min(4, os.cpu_count() or 1))

    def __post_init__(self):
        if self.max_batch_size < 1 or self.batch_timeout_micros < 0 or self.num_batch_threads < 1:
            raise ValueError("max_batch_size and num_batch_threads must be >= 1, batch_timeout_micros >= 0")


class _Request:
    __slots__ = ("batch", "size", "done", "result", "error")

    def __init__(self, batch: dict[str, np.ndarray], size: int):
        self.batch, self.size, self.done = batch, size, threading.Event()
        self.result: dict[str, np.ndarray] | None = None
        self.error: BaseException | None = None


def _size(batch: dict[str, np.ndarray]) -> int:
    return next((len(v) for v in batch.values() if np.ndim(v)), 0)


class _Queue:
    """The requests of one (signature, input shapes) and the worker threads that batch them."""

    def __init__(self, signature: Signature, options: BatchingOptions, observe: Callable[[Signature, int], None]):
        self.signature, self.options, self.observe = signature, options, observe
        self.items: deque[_Request] = deque()
        self.cond = threading.Condition()
        self.collecting = threading.Lock()  # one worker gathers a batch at a time; the others run theirs
        self.closed = False
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"batch-{signature.name}-{i}")
                        for i in range(options.num_batch_threads)]
        for thread in self.threads:
            thread.start()

    def submit(self, request: _Request) -> None:
        with self.cond:
            if self.closed:
                raise RuntimeError("batcher closed")
            self.items.append(request)
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _next(self) -> list[_Request] | None:
        limit, timeout = self.options.max_batch_size, self.options.batch_timeout_micros / 1e6
        with self.collecting, self.cond:
            while not self.items:
                if self.closed:
                    return None
                self.cond.wait(0.5)
            batch = [self.items.popleft()]
            rows, deadline = batch[0].size, time.monotonic() + timeout
            while rows < limit:
                if self.items:
                    if rows + self.items[0].size > limit:
                        break
                    batch.append(self.items.popleft())
                    rows += batch[-1].size
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    break
                self.cond.wait(remaining)
            return batch

    def _work(self) -> None:
        while True:
            batch = self._next()
            if batch is None:
                return
            self._run(batch)

    def _run(self, requests: list[_Request]) -> None:
        try:
            merged = {a: np.concatenate([r.batch[a] for r in requests]) for a in requests[0].batch}
            outputs = run_batch(self.signature, merged)
            self.observe(self.signature, sum(r.size for r in requests))
            start = 0
            for request in requests:
                request.result = {a: v[start:start + request.size] for a, v in outputs.items()}
                start += request.size
        except InvalidInput as err:
            if len(requests) == 1:
                requests[0].error = err
            else:
                for request in requests:  # isolate the guilty request
                    self._run([request])
        except BaseException as err:  # noqa: BLE001 - handed to the waiting request threads
            for request in requests:
                request.error = err
        finally:
            for request in requests:
                if request.result is not None or request.error is not None:
                    request.done.set()


class Batcher:
    """Batches the requests of one loaded model version. `run(signature, batch)` blocks for its own outputs."""

    def __init__(self, options: BatchingOptions, observe: Callable[[Signature, int], None] | None = None):
        self.options = options
        self.observe = observe or (lambda signature, size: None)
        self.queues: dict[tuple, _Queue] = {}
        self.lock = threading.Lock()
        self.closed = False

    def run(self, signature: Signature, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        size = _size(batch)
        if size >= self.options.max_batch_size or size == 0 or self.closed:
            outputs = run_batch(signature, batch)
            self.observe(signature, size)
            return outputs
        key = (signature.name, tuple((a, v.shape[1:], v.dtype.str) for a, v in sorted(batch.items())))
        with self.lock:
            queue = self.queues.get(key)
            if queue is None:
                queue = self.queues[key] = _Queue(signature, self.options, self.observe)
        request = _Request(batch, size)
        try:
            queue.submit(request)
        except RuntimeError:  # closed meanwhile: run it here
            outputs = run_batch(signature, batch)
            self.observe(signature, size)
            return outputs
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def close(self) -> None:
        with self.lock:
            self.closed = True
            queues, self.queues = list(self.queues.values()), {}
        for queue in queues:
            queue.close()
