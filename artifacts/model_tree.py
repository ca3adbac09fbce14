"""The tree of deployed models (INTERFACE.md section 4), as TF Serving reads it.

    $GENART_HOME/models/models.config     a TF Serving `model_config_list` (protobuf text format)
    $GENART_HOME/models/<MODEL>/<N>/      one complete SavedModel per positive version number
A numbered dir counts as a version only once it holds `saved_model.pb`; `.tmp-…` dirs are deploys under way.
Concurrent deploys: locally they take turns on `models/.registry.lock` (`registry_lock`); on gs:// a deploy claims
its version dir by creating `<N>/.deploy-claim` (first creator wins), and models.config is rewritten with a
generation precondition, re-read and retried when another writer got there first.
The TF Serving config proto does not import TensorFlow, but is imported only where models.config is used.
"""
from __future__ import annotations

import contextlib
import random
import time

from artifacts import export, locking, storage
from artifacts.home import models_dir
from artifacts.naming import validate_name, validate_version

MODELS_CONFIG = "models.config"
STAGING_PREFIX = ".tmp-"
MODEL_PLATFORM = "tensorflow"
REGISTRY_LOCK = ".registry.lock"  # under models/, local trees only
DEPLOY_CLAIM = ".deploy-claim"  # in a gs:// version dir: created (if absent) by the deploy that owns the number
CONFIG_WRITE_ATTEMPTS = 20


class ModelTreeError(Exception):
    """A user-facing refusal (unknown model or version, bad name, broken models.config...)."""


def models_config_path(home: str | None = None) -> str:
    return storage.join(models_dir(home), MODELS_CONFIG)


def model_base_path(name: str, home: str | None = None) -> str:
    return storage.join(models_dir(home), name)


def registry_lock(home: str | None = None):
    """A context manager: deploys of a local tree take turns in it; on gs:// a no-op (preconditions instead)."""
    root = models_dir(home)
    return contextlib.nullcontext() if storage.is_gcs(root) else locking.locked(storage.join(root, REGISTRY_LOCK))


def claim_version(base_path: str, version: int, owner: str) -> bool:
    """Claim `<base_path>/<version>/` for one deploy (gs://, where there is no rename); False if another has it."""
    return locking.create_exclusive(storage.join(base_path, str(version), DEPLOY_CLAIM), owner.encode("utf-8"))


def _numbered(name: str) -> int | None:
    """The version a directory name stands for (a positive decimal integer), else None."""
    try:
        return validate_version(name)
    except ValueError:
        return None


def numbered_dirs(base_path: str) -> dict[int, str]:
    """{version: dir name} of every numbered entry below a model's base path, complete or not."""
    if not storage.isdir(base_path):
        return {}
    found = {}
    for name in storage.listdir(base_path):
        version = _numbered(name)
        if version is not None:
            found[version] = name
    return found


def list_versions(base_path: str) -> list[int]:
    """The complete versions of a model (numbered dirs holding `saved_model.pb`), ascending."""
    return sorted(version for version, name in numbered_dirs(base_path).items()
                  if export.is_complete(storage.join(base_path, name)))


def latest_version(base_path: str) -> int | None:
    versions = list_versions(base_path)
    return versions[-1] if versions else None


def list_models(home: str | None = None) -> list[str]:
    """Names of the models under `models/` that have at least one complete version, sorted."""
    root = models_dir(home)
    if not storage.isdir(root):
        return []
    names = []
    for name in storage.listdir(root):
        try:
            validate_name(name)
        except ValueError:
            continue  # models.config, staging dirs, stray files
        if list_versions(storage.join(root, name)):
            names.append(name)
    return names


def resolve_model_dir(name: str, version: int | str | None = None, home: str | None = None) -> str:
    """The SavedModel dir of model `name` at `version` (default: the latest complete one)."""
    checked(validate_name, name, "model name")
    base_path = storage.join(models_dir(home), name)
    versions = list_versions(base_path)
    if not versions:
        known = ", ".join(list_models(home)) or "none"
        raise ModelTreeError(f"no model named {name!r} with a complete version under {models_dir(home)} "
                            f"(known models: {known}); deploy one with ./create_model.sh -j JOB -n {name}")
    if version is None:
        return storage.join(base_path, str(versions[-1]))
    number = checked(validate_version, version)
    if number not in versions:
        raise ModelTreeError(f"model {name!r} has no version {number} "
                            f"(versions: {', '.join(map(str, versions))})")
    return storage.join(base_path, numbered_dirs(base_path)[number])


def checked(validator, value, *args, error: type[Exception] = ModelTreeError):
    """`validator(value, *args)`, its ValueError raised as `error` (a user-facing refusal)."""
    try:
        return validator(value, *args)
    except ValueError as err:
        raise error(str(err)) from None


def next_version(base_path: str) -> int:
    """Highest numbered dir + 1 (incomplete ones count too, so a number is never reused), starting at 1."""
    return max(numbered_dirs(base_path), default=0) + 1


def read_models_config(path: str):
    """Parse a TF Serving `models.config` (text format) into a `ModelServerConfig`."""
    return _parse_models_config(storage.read_text(path), path)


def _parse_models_config(text: str, path: str):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise ModelTreeError(f"{path} is not a valid TF Serving model config: {err}") from None
    return config


def write_models_config(home: str | None = None, *, names: list[str] | None = None, path: str | None = None) -> str:
    """Rewrite `models/models.config` to name every model under `models/`; return its path.

    `names` limits the file to those models and `path` writes it elsewhere (e.g. a config serving only a demo's
    models). Settings a user added to an entry of the previous file (`model_version_policy`, `version_labels`...)
    are kept for models still present; `name`, `base_path` (absolute) and `model_platform` are always rewritten.
    Concurrent writers: on gs:// the write is conditional on the generation read, and redone on a conflict;
    locally, writers that may race hold `registry_lock`.
    """
    path = path or models_config_path(home)
    for attempt in range(CONFIG_WRITE_ATTEMPTS):
        previous, generation = locking.read_versioned(path)
        text = _models_config_text(home, names, previous, path)
        if locking.write_unless_changed(path, text.encode("utf-8"), generation):
            return path
        time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))  # another deploy wrote it meanwhile: merge again
    raise ModelTreeError(f"{path} kept changing while it was rewritten ({CONFIG_WRITE_ATTEMPTS} attempts); "
                         f"try again")


def _models_config_text(home: str | None, names: list[str] | None, previous_bytes: bytes | None, path: str) -> str:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    previous = {}
    if previous_bytes is not None:
        try:
            previous = {entry.name: entry for entry in _parse_models_config(previous_bytes.decode("utf-8"), path)
                        .model_config_list.config}
        except (ModelTreeError, UnicodeDecodeError):
            previous = {}  # a broken file is replaced, not merged
    config = model_server_config_pb2.ModelServerConfig()
    for name in list_models(home) if names is None else names:
        entry = config.model_config_list.config.add()
        if name in previous:
            entry.CopyFrom(previous[name])
        entry.name = name
        entry.base_path = storage.join(models_dir(home), name)
        entry.model_platform = MODEL_PLATFORM
    return text_format.MessageToString(config)
