"""Deploying a job's export into the model tree (INTERFACE.md section 4): the work behind `create_model.sh -j`.

`deploy` copies `jobs/<JOB>/export/` to `models/<MODEL>/<VERSION>/` and rewrites `models.config`. Locally it is
copied to `models/<MODEL>/.tmp-…/` and renamed, so a numbered version dir never lacks `saved_model.pb` (a crash
leaves only a `.tmp-…` dir, which nothing counts). gs:// has no rename: files are copied with `saved_model.pb`
last, and a numbered prefix without it is never counted as a version (nor is its number reused). The tree's
layout and models.config are `artifacts.model_tree`'s; job records are `artifacts.jobs`'. No TensorFlow here.
"""
from __future__ import annotations

import os
import shutil
import uuid

from artifacts import export, jobs, storage
from artifacts.home import jobs_dir
from artifacts.model_tree import (STAGING_PREFIX, ModelTreeError, checked, next_version, numbered_dirs,
                                  list_versions, model_base_path, write_models_config)
from artifacts.naming import validate_name, validate_version


class RegistryError(ModelTreeError):
    """A refused deploy (unknown job, no export, version taken...)."""


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
    return f"job {job_name!r} (state {state}) has no export ({export.marker(export_dir)} missing): {advice}"


def _install_local(export_dir: str, base_path: str, final: str) -> None:
    """Copy into `<base_path>/.tmp-…/`, then rename to the numbered dir: complete or absent."""
    os.makedirs(base_path, exist_ok=True)
    staging = os.path.join(base_path, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
    try:
        try:
            storage.copytree(export_dir, staging)
        except FileNotFoundError:  # the job re-exported meanwhile (export/ is replaced by a rename)
            raise RegistryError(f"{export_dir} changed while it was copied; try again") from None
        if not export.is_complete(staging):
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
    checked(validate_name, job_name, "job name", error=RegistryError)
    model_name = checked(validate_name, model_name or job_name, "model name", error=RegistryError)
    job_dir = storage.join(jobs_dir(home), job_name)
    if not storage.isdir(job_dir):
        recent = ", ".join(job["name"] for job in jobs.list_jobs(home, limit=5)) or "none"
        raise RegistryError(f"no job named {job_name!r} under {jobs_dir(home)} (recent jobs: {recent})")
    export_dir = jobs.export_dir(job_dir)
    if not export.is_complete(export_dir):
        raise RegistryError(_export_refusal(job_name, jobs.read_job(job_name, home), export_dir))

    base_path = model_base_path(model_name, home)
    existing = numbered_dirs(base_path)
    number = next_version(base_path) if version is None else checked(validate_version, version, error=RegistryError)
    if number in existing:
        state = "" if number in list_versions(base_path) else f" (incomplete: no {export.SAVED_MODEL_PB}; remove it)"
        raise RegistryError(f"model {model_name!r} already has version {number} at "
                            f"{storage.join(base_path, existing[number])}{state}; choose another -v "
                            f"or omit -v for version {next_version(base_path)}")
    final = storage.join(base_path, str(number))
    if storage.is_gcs(final):
        storage.copytree(export_dir, final, last=[export.SAVED_MODEL_PB])
    else:
        _install_local(export_dir, base_path, final)
    write_models_config(home)
    return model_name, number, final
