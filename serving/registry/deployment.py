"""Deploying a job's export into the model tree (INTERFACE.md section 4): the work behind `create_model.sh -j`.

`deploy` copies `jobs/<JOB>/export/` to `models/<MODEL>/<VERSION>/` and rewrites `models.config`. Locally it is
copied to `models/<MODEL>/.tmp-…/`, then, holding the registry lock (concurrent deploys take turns there), the
version is numbered, the copy renamed and models.config rewritten: a numbered version dir never lacks
`saved_model.pb` (a crash leaves only a `.tmp-…` dir, which nothing counts). gs:// has no rename and no lock: the
deploy first claims its version dir (`model_tree.claim_version`, a create-if-absent that only one deploy wins;
the loser takes the next number), then copies with `saved_model.pb` last; a numbered prefix without it is never
counted as a version (nor is its number reused), and models.config is rewritten with a generation precondition.
The tree's layout and models.config are `artifacts.model_tree`'s; job records are `artifacts.jobs`'. No TensorFlow.
"""
from __future__ import annotations

import os
import shutil
import uuid

from artifacts import export, jobs, storage
from artifacts.home import jobs_dir
from artifacts.model_tree import (STAGING_PREFIX, ModelTreeError, checked, claim_version, list_versions,
                                  model_base_path, next_version, numbered_dirs, registry_lock, write_models_config)
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


def _taken(model_name: str, base_path: str, number: int) -> RegistryError | None:
    """The refusal of an explicit version that exists already (complete or not), else None."""
    existing = numbered_dirs(base_path)
    if number not in existing:
        return None
    state = "" if number in list_versions(base_path) else f" (incomplete: no {export.SAVED_MODEL_PB}; remove it)"
    return RegistryError(f"model {model_name!r} already has version {number} at "
                         f"{storage.join(base_path, existing[number])}{state}; choose another -v "
                         f"or omit -v for version {next_version(base_path)}")


def _install_local(export_dir: str, model_name: str, base_path: str, version: int | None,
                   home: str | None) -> tuple[int, str]:
    """Copy into `<base_path>/.tmp-…/`, then, in the registry lock, number it, rename it and rewrite models.config."""
    os.makedirs(base_path, exist_ok=True)
    staging = os.path.join(base_path, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
    try:
        try:
            storage.copytree(export_dir, staging)
        except FileNotFoundError:  # the job re-exported meanwhile (export/ is replaced by a rename)
            raise RegistryError(f"{export_dir} changed while it was copied; try again") from None
        if not export.is_complete(staging):
            raise RegistryError(f"{export_dir} changed while it was copied; try again")
        with registry_lock(home):
            number = next_version(base_path) if version is None else version
            refusal = _taken(model_name, base_path, number)
            if refusal:
                raise refusal
            final = storage.join(base_path, str(number))
            os.rename(staging, final)
            write_models_config(home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return number, final


def _install_gcs(export_dir: str, model_name: str, base_path: str, version: int | None,
                 home: str | None, owner: str) -> tuple[int, str]:
    """Claim a version dir (the next free one, or `version`), copy with saved_model.pb last, rewrite models.config."""
    number = next_version(base_path) if version is None else version
    while not claim_version(base_path, number, owner):
        if version is not None:
            raise _taken(model_name, base_path, number) or RegistryError(
                f"model {model_name!r}: version {number} was just claimed by another deploy; choose another -v")
        number = max(number + 1, next_version(base_path))
    final = storage.join(base_path, str(number))
    storage.copytree(export_dir, final, last=[export.SAVED_MODEL_PB])
    write_models_config(home)
    return number, final


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
    if version is not None:
        version = checked(validate_version, version, error=RegistryError)
        refusal = _taken(model_name, base_path, version)
        if refusal:
            raise refusal  # at once, before copying (checked again when numbering)
    if storage.is_gcs(base_path):
        number, final = _install_gcs(export_dir, model_name, base_path, version, home, f"job {job_name}")
    else:
        number, final = _install_local(export_dir, model_name, base_path, version, home)
    return model_name, number, final
