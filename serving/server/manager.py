"""The model manager: which versions of which models are loaded, kept in step with the file system.

Like TF Serving's ServerCore: every model of `models.config` (or one `--model-name/--model-base-path`) is a base
path of numbered version dirs; a background thread polls them every `--file-system-poll-wait-seconds` (0: once,
at start; negative: never), applies the `model_version_policy` (latest N — 1 by default —, all, or specific),
loads wanted versions that are new (newest first, each warmed up), and only then unloads versions no longer
wanted (availability preserving). Requests hold a version while they run (`use`), so a swap never drops one:
in-flight requests finish on the old version, which is unloaded when its last request is done. Version states
follow TF Serving (`serving.server.versions`: states, statuses with real error codes, load retries).
`models.config` itself is re-read when it changes, so a model added by `create_model.sh` is served without a
restart. `version_labels` map labels to versions. Each loaded version runs its graph calls on its own `Batcher`
(bounded queue, deadlines, splitting; merging only with `--enable-batching`), and `stuck` names the models whose
graph has been busy with one call for too long (for `/readyz`).
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from artifacts import export, storage
from artifacts import model_tree
from serving.server.batching import Batcher, BatchingOptions
from serving.server.limits import Limits
from serving.server.metrics import Metrics
from serving.server.model import LoadedModel, NotFound, Signature, Unavailable, load_model, public_message
from serving.server.model_config import ModelSpec, specs_from_config_file
from serving.server.versions import (AVAILABLE, END, LOADING, START, UNLOADING, LoadFailure,  # noqa: F401
                                     Model as _Model, Version as _Version, VersionStatus, error_code)

log = logging.getLogger(__name__)


@dataclass
class Served:
    """What `ModelManager.use` hands a request: the loaded version and how to run a batch on it
    (`runner(signature, batch, deadline=None)`)."""
    model: LoadedModel
    runner: Callable[..., dict]


class ModelManager:
    def __init__(self, specs: list[ModelSpec] | None = None, *, config_path: str | None = None,
                 poll_seconds: float = 1.0, batching: BatchingOptions | None = None, limits: Limits | None = None,
                 metrics: Metrics | None = None, on_change: Callable[[], None] | None = None):
        """`batching`: how each version's Batcher runs graph calls (default: no merging, the queue bound of
        `limits`); `limits`: the server's limits (load retries here; the adapters read the others)."""
        self.config_path, self.poll_seconds = config_path, poll_seconds
        self.limits = limits or Limits()
        self.batching = batching or BatchingOptions(merge=False, max_enqueued_batches=self.limits.max_enqueued_batches)
        self.metrics = metrics or Metrics()
        self.metrics.states, self.metrics.known_model = self.states, self.has_model
        self.on_change = on_change
        self._lock = threading.RLock()
        self._models: dict[str, _Model] = {}
        self._config_text: str | None = None
        self._stop = threading.Event()
        self._polled = threading.Event()
        self._thread: threading.Thread | None = None
        for spec in specs or []:
            self._models[spec.name] = _Model(spec)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "ModelManager":
        """Load in the background: a first poll at once, then every `poll_seconds`."""
        self._thread = threading.Thread(target=self._loop, name="model-manager", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - keep polling; one bad poll must not stop serving
                log.exception("polling the model file system failed")
            self._polled.set()
            if self.poll_seconds <= 0:
                return
            self._stop.wait(self.poll_seconds)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            entries = [v for m in self._models.values() for v in m.versions.values() if v.state == AVAILABLE]
        for entry in entries:
            self._start_unload(entry)

    def wait_until_ready(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return True
            time.sleep(0.05)
        return self.ready()

    # ------------------------------------------------------------ polling

    def poll_once(self) -> None:
        self._reload_config()
        for name, model in list(self._models.items()):
            if self._stop.is_set():
                return
            self._reconcile(model)
        self._polled.set()

    def _reload_config(self) -> None:
        if not self.config_path:
            return
        try:
            text = storage.read_text(self.config_path) if storage.exists(self.config_path) else ""
        except OSError as err:
            log.warning("cannot read %s: %s", self.config_path, err)
            return
        if text == self._config_text:
            return
        try:
            specs = specs_from_config_file(self.config_path) if text else []
        except model_tree.ModelTreeError as err:
            log.error("%s (keeping the previous configuration)", err)
            self._config_text = text
            return
        self._config_text = text
        self._apply_specs(specs)

    def _apply_specs(self, specs: list[ModelSpec]) -> None:
        new = {spec.name: spec for spec in specs}
        with self._lock:
            models = dict(self._models)
            for name in list(models):
                if name not in new or new[name].base_path != models[name].spec.base_path:
                    for entry in models.pop(name).versions.values():
                        if entry.state == AVAILABLE:
                            self._start_unload(entry)
                    log.info("model %s removed from the configuration", name)
            for name, spec in new.items():
                if name in models:
                    models[name].spec = spec
                else:
                    models[name] = _Model(spec)
                    log.info("model %s configured: base path %s, policy %s", name, spec.base_path, spec.policy)
            self._models = models
        self._changed()

    def _reconcile(self, model: _Model) -> None:
        spec = model.spec
        try:
            on_disk = model_tree.list_versions(spec.base_path)
        except Exception as err:  # noqa: BLE001 - e.g. a bucket briefly unreachable: try again next poll
            log.warning("cannot list versions of %s in %s: %s", spec.name, spec.base_path, err)
            return
        wanted = spec.wanted(on_disk)
        for number in sorted(wanted, reverse=True):
            entry = model.versions.get(number)
            if entry is not None and entry.state in (LOADING, AVAILABLE):
                continue
            path = self._version_path(spec.base_path, number)
            stamp = _stamp(export.marker(path))
            failure = model.failed.get(number)
            if failure is not None and not failure.due(stamp, self.limits.max_num_load_retries):
                continue
            self._load(model, number, path, stamp)
            if self._stop.is_set():
                return
        with self._lock:
            keep_old = wanted and not any(v.state == AVAILABLE and v.number in wanted for v in model.versions.values())
            stale = [] if keep_old else [v for v in model.versions.values()
                                         if v.state == AVAILABLE and v.number not in wanted]
        for entry in stale:
            self._start_unload(entry)

    @staticmethod
    def _version_path(base_path: str, number: int) -> str:
        path = storage.join(base_path, str(number))
        if storage.exists(path):
            return path
        for name in storage.listdir(base_path):  # e.g. "007"
            if name.isdigit() and int(name) == number:
                return storage.join(base_path, name)
        return path

    def _load(self, model: _Model, number: int, path: str, stamp: str | None) -> None:
        entry = _Version(number, path)
        entry.state = LOADING
        with self._lock:
            model.versions[number] = entry
        self._changed()
        started = time.monotonic()
        log.info("loading model %s version %d from %s", model.spec.name, number, path)
        try:
            local = entry.local_copy.enter_context(storage.local_copy(path, "genart-serving-"))
            loaded = load_model(local, model.spec.name, number)
            loaded.warm_up()
        except Exception as err:  # noqa: BLE001 - reported in the version's status
            previous = model.failed.get(number) or LoadFailure(stamp, 0, 0.0)
            failure = previous.next(stamp, self.limits.load_retry_interval_s)
            retries = self.limits.max_num_load_retries
            then = f"retry {failure.attempts} of {retries} in {self.limits.load_retry_interval_s:g}s" \
                if failure.attempts <= retries else "no retries left until its saved_model.pb changes"
            with self._lock:
                entry.state, entry.code = END, error_code(err)
                entry.error = f"Failed to load version {number}: {type(err).__name__}: {public_message(err, 1000)}" \
                              f" (attempt {failure.attempts}; {then})"
                model.failed[number] = failure
            self._remove_staging(entry)
            log.error("model %s version %d failed to load from %s (%s): %s", model.spec.name, number, path, then, err)
            self._changed()
            return
        batcher = Batcher(self.batching, self._observe)
        with self._lock:
            entry.model, entry.batcher, entry.state = loaded, batcher, AVAILABLE
            model.failed.pop(number, None)
        log.info("model %s version %d AVAILABLE (loaded in %.1fs; signatures: %s)", model.spec.name, number,
                 time.monotonic() - started, ", ".join(loaded.signatures))
        self._changed()

    def _start_unload(self, entry: _Version) -> None:
        with self._lock:
            if entry.state != AVAILABLE:
                return
            entry.state = UNLOADING
            idle = entry.in_flight == 0
        log.info("unloading version %d (%s)", entry.number, entry.path)
        if idle:
            self._finish_unload(entry)
        self._changed()

    def _finish_unload(self, entry: _Version) -> None:
        with self._lock:
            if entry.state != UNLOADING or entry.in_flight:
                return
            entry.state, batcher, entry.model, entry.batcher = END, entry.batcher, None, None
        if batcher is not None:
            batcher.close()
        self._remove_staging(entry)
        self._changed()

    @staticmethod
    def _remove_staging(entry: _Version) -> None:
        entry.local_copy.close()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # noqa: BLE001
                log.exception("state-change callback failed")

    def _observe(self, signature: Signature, size: int) -> None:
        self.metrics.record_batch(signature.model_name, signature.name, size)

    # ------------------------------------------------------------ requests

    @contextlib.contextmanager
    def use(self, name: str, version: int | None = None, label: str | None = None) -> Iterator[Served]:
        """Hold the requested version (default: the latest available) for the duration of a request."""
        with self._lock:
            entry = self._resolve(name, version, label)
            entry.in_flight += 1
            served = Served(entry.model, entry.batcher.run)
        try:
            yield served
        finally:
            with self._lock:
                entry.in_flight -= 1
                last = entry.in_flight == 0 and entry.state == UNLOADING
            if last:
                self._finish_unload(entry)

    def _resolve(self, name: str, version: int | None, label: str | None) -> _Version:
        model = self._models.get(name)
        if model is None:
            request = f"Latest({name})" if version is None and label is None else f"Specific({name}, {version or label})"
            raise NotFound(f"Servable not found for request: {request}")
        if label is not None:
            if label not in model.spec.labels:
                raise NotFound(f"Unrecognized servable version label: {label}")
            version = int(model.spec.labels[label])
        if version is not None:
            entry = model.versions.get(version)
            if entry is not None and entry.state == AVAILABLE:
                return entry
            if entry is not None and entry.state in (START, LOADING):
                raise Unavailable(f"Servable {name} version {version} is loading; try again shortly")
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        available = [v for v in model.versions.values() if v.state == AVAILABLE]
        if available:
            return max(available, key=lambda v: v.number)
        failed = [v.error for v in model.versions.values() if v.error]
        detail = f"; last error: {failed[-1]}" if failed else (
            "; loading" if any(v.state == LOADING for v in model.versions.values()) else
            f"; no version found in {model.spec.base_path} yet")
        raise Unavailable(f"Model {name} has no available version yet{detail}")

    # ------------------------------------------------------------ status

    def model_names(self) -> list[str]:
        return sorted(self._models)

    def has_model(self, name: str) -> bool:
        return name in self._models

    def labels(self, name: str) -> dict:
        model = self._models.get(name)
        return dict(model.spec.labels) if model else {}

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        """TF Serving's GetModelStatus: every known version of `name` (or the one asked for); NotFound if none."""
        model = self._models.get(name)
        if label is not None:
            if model is None or label not in model.spec.labels:
                raise NotFound(f"Unrecognized servable version label: {label}")
            version = int(model.spec.labels[label])
        with self._lock:
            entries = sorted(model.versions.values(), key=lambda v: v.number) if model else []
        if not entries:
            raise NotFound(f"Could not find any versions of model {name}")
        if version is not None:
            entries = [v for v in entries if v.number == version]
            if not entries:
                raise NotFound(f"Could not find version {version} of model {name}")
        return [v.status() for v in entries]

    def states(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return [(name, str(v.number), v.state) for name, m in self._models.items() for v in m.versions.values()]

    def ready(self) -> bool:
        """The first poll is done and every configured model has an AVAILABLE version."""
        if not self._polled.is_set():
            return False
        with self._lock:
            return all(any(v.state == AVAILABLE for v in m.versions.values()) for m in self._models.values())

    def stuck(self, seconds: float) -> list[str]:
        """Models with a graph call that has been running for more than `seconds`."""
        with self._lock:
            batchers = [(n, v.batcher) for n, m in self._models.items() for v in m.versions.values()
                        if v.state == AVAILABLE and v.batcher is not None]
        return sorted({name for name, batcher in batchers if batcher.oldest_call_seconds() > seconds})

    def not_ready(self) -> list[str]:
        with self._lock:
            return sorted(n for n, m in self._models.items() if not any(v.state == AVAILABLE
                                                                        for v in m.versions.values()))


def _stamp(path: str) -> str | None:
    try:
        return storage.stamp(path)
    except Exception:  # noqa: BLE001 - e.g. a bucket briefly unreachable: the load itself will say
        return None
