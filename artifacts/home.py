"""`$GENART_HOME` (INTERFACE.md section 0): where jobs and deployed models live.

    $GENART_HOME/jobs/<JOB>/          (artifacts.jobs)
    $GENART_HOME/models/<MODEL>/<N>/  (artifacts.model_tree)
Default `<repo>/workspace`; relative values are made absolute, `gs://` is kept as is.
"""
from __future__ import annotations

import os

from artifacts import storage

HOME_ENV = "GENART_HOME"
JOBS, MODELS = "jobs", "models"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def absolute(path: str) -> str:
    return path if storage.is_gcs(path) else os.path.abspath(os.path.expanduser(path))


def genart_home() -> str:
    """`$GENART_HOME` (made absolute), else `<repo>/workspace`."""
    return absolute(os.environ.get(HOME_ENV) or os.path.join(REPO_ROOT, "workspace"))


def jobs_dir(home: str | None = None) -> str:
    return storage.join(absolute(home) if home else genart_home(), JOBS)


def models_dir(home: str | None = None) -> str:
    return storage.join(absolute(home) if home else genart_home(), MODELS)
