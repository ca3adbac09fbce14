"""The model registry (INTERFACE.md section 4): `$GENART_HOME` layout, model versions, `models.config`, jobs.

Owns:
- where things live: `genart_home()` (env `GENART_HOME`, else `<repo>/workspace`), `jobs/`, `models/`,
  `models/models.config`;
- versions as TF Serving sees them: numbered sub-directories of a model's base path that hold `saved_model.pb`;
- `models.config`: a TF Serving `model_config_list` (protobuf text format) naming every deployed model, so that
  `tensorflow_model_server --model_config_file=...` serves the very same tree as `serving.server`;
- the job listing shown by `create_model.sh -l`, and `deploy`: copying a job's `export/` to
  `models/<MODEL>/<VERSION>/`. Locally it is copied to `models/<MODEL>/.tmp-…/` and renamed, so a numbered
  version dir never lacks `saved_model.pb` (a crash leaves only a `.tmp-…` dir, which nothing counts). gs:// has no
  rename: files are copied with `saved_model.pb` last, and a numbered prefix without it is never counted as a
  version (nor is its number reused).

No TensorFlow here: `create_model.sh -l` must answer at once. The TF Serving config proto
(`tensorflow_serving.config.model_server_config_pb2`) does not import TensorFlow, but is still imported only
where `models.config` is read or written.
"""
from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime, timezone

from preprocess import storage
from preprocess.naming import validate_name, validate_version

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOME_ENV = "GENART_HOME"
JOBS = "jobs"
MODELS = "models"
MODELS_CONFIG = "models.config"
JOB_FILE = "job.json"
EXPORT_DIR = "export"
SAVED_MODEL_PB = "saved_model.pb"  # its presence marks a complete SavedModel (written last to gs://)
STAGING_PREFIX = ".tmp-"
MODEL_PLATFORM = "tensorflow"


class RegistryError(Exception):
    """A user-facing refusal (unknown job or model, no export, version taken, bad name...)."""


# ---------------------------------------------------------------- where things live


def _absolute(path: str) -> str:
    return path if storage.is_gcs(path) else os.path.abspath(os.path.expanduser(path))


def genart_home() -> str:
    """`$GENART_HOME` (made absolute), else `<repo>/workspace`."""
    return _absolute(os.environ.get(HOME_ENV) or os.path.join(REPO_ROOT, "workspace"))


def models_dir(home: str | None = None) -> str:
    return storage.join(_absolute(home) if home else genart_home(), MODELS)


def jobs_dir(home: str | None = None) -> str:
    return storage.join(_absolute(home) if home else genart_home(), JOBS)


def models_config_path(home: str | None = None) -> str:
    return storage.join(models_dir(home), MODELS_CONFIG)


# ---------------------------------------------------------------- versions


def _numbered(name: str) -> int | None:
    """The version a directory name stands for (a positive decimal integer), else None."""
    try:
        return validate_version(name)
    except ValueError:
        return None


def _numbered_dirs(base_path: str) -> dict[int, str]:
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
    return sorted(version for version, name in _numbered_dirs(base_path).items()
                  if storage.exists(storage.join(base_path, name, SAVED_MODEL_PB)))


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
    _checked(validate_name, name, "model name")
    base_path = storage.join(models_dir(home), name)
    versions = list_versions(base_path)
    if not versions:
        known = ", ".join(list_models(home)) or "none"
        raise RegistryError(f"no model named {name!r} with a complete version under {models_dir(home)} "
                            f"(known models: {known}); deploy one with ./create_model.sh -j JOB -n {name}")
    if version is None:
        return storage.join(base_path, str(versions[-1]))
    number = _checked(validate_version, version)
    if number not in versions:
        raise RegistryError(f"model {name!r} has no version {number} "
                            f"(versions: {', '.join(map(str, versions))})")
    return storage.join(base_path, _numbered_dirs(base_path)[number])


def _checked(validator, value, *args):
    try:
        return validator(value, *args)
    except ValueError as err:
        raise RegistryError(str(err)) from None


# ---------------------------------------------------------------- models.config


def read_models_config(path: str):
    """Parse a TF Serving `models.config` (text format) into a `ModelServerConfig`."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(storage.read_text(path), config)
    except text_format.ParseError as err:
        raise RegistryError(f"{path} is not a valid TF Serving model config: {err}") from None
    return config


def write_models_config(home: str | None = None, *, names: list[str] | None = None, path: str | None = None) -> str:
    """Rewrite `models/models.config` to name every model under `models/`; return its path.

    `names` limits the file to those models and `path` writes it elsewhere (e.g. a config serving only a demo's
    models). Settings a user added to an entry of the previous file (`model_version_policy`, `version_labels`...)
    are kept for models still present; `name`, `base_path` (absolute) and `model_platform` are always rewritten.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = path or models_config_path(home)
    previous = {}
    if storage.exists(path):
        try:
            previous = {entry.name: entry for entry in read_models_config(path).model_config_list.config}
        except RegistryError:
            previous = {}  # a broken file is replaced, not merged
    config = model_server_config_pb2.ModelServerConfig()
    for name in list_models(home) if names is None else names:
        entry = config.model_config_list.config.add()
        if name in previous:
            entry.CopyFrom(previous[name])
        entry.name = name
        entry.base_path = storage.join(models_dir(home), name)
        entry.model_platform = MODEL_PLATFORM
    storage.write_text(path, text_format.MessageToString(config))
    return path


# ---------------------------------------------------------------- jobs


def _created_sort_key(job: dict) -> tuple:
    """Newest first; jobs without a readable `created` time last."""
    try:
        created = datetime.fromisoformat(str(job.get("created")).replace("Z", "+00:00"))
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return (0, -created.timestamp(), job["name"])
    except ValueError:
        return (1, 0.0, job["name"])


def read_job(name: str, home: str | None = None) -> dict | None:
    """A job's `job.json` (with `name` filled in), or None when the job dir has none or it is unreadable."""
    path = storage.join(jobs_dir(home), name, JOB_FILE)
    if not storage.exists(path):
        return None
    try:
        job = storage.read_json(path)
    except (OSError, ValueError):  # being rewritten, or damaged
        return None
    if not isinstance(job, dict):
        return None
    job.setdefault("name", name)
    return job


def list_jobs(home: str | None = None, limit: int | None = 10) -> list[dict]:
    """The jobs under `jobs/` (their job.json), most recently created first; at most `limit` (None: all)."""
    root = jobs_dir(home)
    if not storage.isdir(root):
        return []
    jobs = [job for job in (read_job(name, home) for name in storage.listdir(root)) if job is not None]
    jobs.sort(key=_created_sort_key)
    return jobs if limit is None else jobs[:limit]


# ---------------------------------------------------------------- deploy


def _export_refusal(job_name: str, job: dict | None, export_dir: str) -> str:
    state = (job or {}).get("state", "UNKNOWN")
    advice = {
        "QUEUED": "wait until it has trained and exported",
        "PREPARING": "wait until it has trained and exported",
        "RUNNING": "wait until it finishes (it exports at the end)",
        "FAILED": f"see its error ({(job or {}).get('error') or 'in job.json'}); fix it and resume with "
                  f"./run_training.sh -j {job_name} ...",
        "CANCELLED": f"resume it with ./run_training.sh -j {job_name} ..., or export its last checkpoint "
                     f"with python -m trainer.export --job-dir {os.path.dirname(export_dir)}",
    }.get(state, f"export it with python -m trainer.export --job-dir {os.path.dirname(export_dir)}")
    return f"job {job_name!r} (state {state}) has no export ({export_dir}/{SAVED_MODEL_PB} missing): {advice}"


def _next_version(base_path: str) -> int:
    """Highest numbered dir + 1 (incomplete ones count too, so a number is never reused), starting at 1."""
    return max(_numbered_dirs(base_path), default=0) + 1


def _copy_marker_last(src: str, dst: str) -> None:
    """Copy a SavedModel file by file with `saved_model.pb` last (for gs://, which has no rename)."""
    for rel in sorted(storage.walk_files(src), key=lambda rel: rel == SAVED_MODEL_PB):
        storage.write_bytes(storage.join(dst, rel), storage.read_bytes(storage.join(src, rel)))


def _install_local(export_dir: str, base_path: str, final: str) -> None:
    """Copy into `<base_path>/.tmp-…/`, then rename to the numbered dir: complete or absent."""
    os.makedirs(base_path, exist_ok=True)
    staging = os.path.join(base_path, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
    try:
        try:
            storage.copytree(export_dir, staging)
        except FileNotFoundError:  # the job re-exported meanwhile (export/ is replaced by a rename)
            raise RegistryError(f"{export_dir} changed while it was copied; try again") from None
        if not os.path.exists(os.path.join(staging, SAVED_MODEL_PB)):
            raise RegistryError(f"{export_dir} changed while it was copied; try again")
        if os.path.exists(final):  # os.rename would silently replace an empty directory
            raise RegistryError(f"{final} appeared while copying (another deploy?); try again")
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def deploy(job_name: str, model_name: str | None = None, version: int | str | None = None,
           home: str | None = None) -> tuple[str, int, str]:
    """Copy job `job_name`'s export to `models/<model_name>/<version>/` and rewrite `models.config`.

    `model_name` defaults to the job name, `version` to the highest existing + 1 (from 1).
    Returns (model name, version, version dir). Raises RegistryError saying why when it refuses.
    """
    _checked(validate_name, job_name, "job name")
    model_name = _checked(validate_name, model_name or job_name, "model name")
    job_dir = storage.join(jobs_dir(home), job_name)
    if not storage.isdir(job_dir):
        recent = ", ".join(job["name"] for job in list_jobs(home, limit=5)) or "none"
        raise RegistryError(f"no job named {job_name!r} under {jobs_dir(home)} (recent jobs: {recent})")
    export_dir = storage.join(job_dir, EXPORT_DIR)
    if not storage.exists(storage.join(export_dir, SAVED_MODEL_PB)):
        raise RegistryError(_export_refusal(job_name, read_job(job_name, home), export_dir))

    base_path = storage.join(models_dir(home), model_name)
    existing = _numbered_dirs(base_path)
    number = _next_version(base_path) if version is None else _checked(validate_version, version)
    if number in existing:
        state = "" if number in list_versions(base_path) else " (incomplete: no saved_model.pb; remove it)"
        raise RegistryError(f"model {model_name!r} already has version {number} at "
                            f"{storage.join(base_path, existing[number])}{state}; choose another -v "
                            f"or omit -v for version {_next_version(base_path)}")
    final = storage.join(base_path, str(number))
    if storage.is_gcs(final):
        _copy_marker_last(export_dir, final)
    else:
        _install_local(export_dir, base_path, final)
    write_models_config(home)
    return model_name, number, final
