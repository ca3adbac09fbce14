"""The model manager's bookkeeping of versions: their TF Serving states, their status, and failed loads.

A version goes START -> LOADING -> AVAILABLE -> UNLOADING -> END (a failed load is END with its error). A failed
load is retried `--max-num-load-retries` times, `--load-retry-interval-micros` apart (`LoadFailure.due`); after
that only once its `saved_model.pb` is rewritten — which `storage.stamp` tells by mtime locally and by object
generation on gs:// — and then with a fresh count. The status carries the failure's real error code
(`error_code`: NOT_FOUND, INVALID_ARGUMENT, DATA_LOSS, PERMISSION_DENIED...), not always UNKNOWN.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from serving.server.batching import Batcher
from serving.server.model import LoadedModel
from serving.server.model_config import ModelSpec

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class VersionStatus:
    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


def error_code(err: BaseException) -> str:
    """The TF Serving (gRPC) error code name of a failed load."""
    import tensorflow as tf

    if isinstance(err, tf.errors.OpError):
        return {tf.errors.NotFoundError: "NOT_FOUND", tf.errors.InvalidArgumentError: "INVALID_ARGUMENT",
                tf.errors.DataLossError: "DATA_LOSS", tf.errors.PermissionDeniedError: "PERMISSION_DENIED",
                tf.errors.ResourceExhaustedError: "RESOURCE_EXHAUSTED", tf.errors.UnavailableError: "UNAVAILABLE",
                tf.errors.FailedPreconditionError: "FAILED_PRECONDITION",
                tf.errors.UnimplementedError: "UNIMPLEMENTED"}.get(type(err), "UNKNOWN")
    for types, code in ((FileNotFoundError, "NOT_FOUND"), (PermissionError, "PERMISSION_DENIED"),
                        (MemoryError, "RESOURCE_EXHAUSTED"), ((ValueError, TypeError, KeyError), "INVALID_ARGUMENT"),
                        ((TimeoutError, ConnectionError), "UNAVAILABLE")):
        if isinstance(err, types):
            return code
    name = type(err).__name__  # google.api_core's NotFound, Forbidden, ServiceUnavailable...
    return {"NotFound": "NOT_FOUND", "Forbidden": "PERMISSION_DENIED", "ServiceUnavailable": "UNAVAILABLE",
            "DecodeError": "DATA_LOSS"}.get(name, "UNKNOWN")


@dataclass
class LoadFailure:
    """The failed loads of one version since its saved_model.pb last changed (`stamp`)."""
    stamp: str | None
    attempts: int
    next_at: float  # monotonic time of the next retry

    def due(self, stamp: str | None, max_retries: int) -> bool:
        """Whether to load again now: the file changed, or a retry is left and its time has come."""
        return stamp != self.stamp or (self.attempts <= max_retries and time.monotonic() >= self.next_at)

    def next(self, stamp: str | None, interval_s: float) -> "LoadFailure":
        attempts = self.attempts + 1 if stamp == self.stamp else 1
        return LoadFailure(stamp, attempts, time.monotonic() + interval_s)


class Version:
    def __init__(self, number: int, path: str):
        self.number, self.path = number, path
        self.state, self.error, self.code = START, "", "OK"
        self.model: LoadedModel | None = None
        self.batcher: Batcher | None = None
        self.in_flight = 0
        self.local_copy = contextlib.ExitStack()  # a gs:// version's local copy, kept while it is loaded

    def status(self) -> VersionStatus:
        return VersionStatus(self.number, self.state, self.code, self.error)


@dataclass
class Model:
    spec: ModelSpec
    versions: dict[int, Version] = field(default_factory=dict)
    failed: dict[int, LoadFailure] = field(default_factory=dict)
