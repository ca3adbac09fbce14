"""The job dir (INTERFACE.md section 2): its entries, and `job.json`, the state of one training job.

    JOB/job.json  config.json  data/  checkpoints/  logs/  samples/  eval/  export/
    job.json: {"name", "model", "state", "created", "started", "ended", "step", "max_steps", "data_dir", "args",
               "error"}    state: QUEUED -> PREPARING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED    times: RFC 3339
              + "best": {"step", "metric", "value"} once an evaluation has run during training
Also the listing of `$GENART_HOME/jobs/` (newest first) that `create_model.sh -l` shows.
"""
from __future__ import annotations

import argparse
import datetime
import re
import sys

from artifacts import console, home, storage
from artifacts.naming import validate_name

JOB_FILE = "job.json"
CONFIG_FILE = "config.json"  # the resolved training configuration
DATA, CHECKPOINTS, LOGS, SAMPLES, EVAL = "data", "checkpoints", "logs", "samples", "eval"
EXPORT = "export"  # the SavedModel (artifacts.export)
QUEUED, PREPARING, RUNNING = "QUEUED", "PREPARING", "RUNNING"
SUCCEEDED, FAILED, CANCELLED = "SUCCEEDED", "FAILED", "CANCELLED"
STATES = (QUEUED, PREPARING, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)
FIELDS = ("name", "model", "state", "created", "started", "ended", "step", "max_steps", "data_dir", "args", "error")
BEST = "best"  # {"step", "metric", "value"}: the best evaluated step by the first metric, present only once one ran
OPTIONAL_FIELDS = (BEST,)
CHECKPOINT_PREFIX = "ckpt"  # checkpoints/ckpt-<step>.index, .data-*: tf.train.CheckpointManager's default name
_CHECKPOINT_INDEX = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)\.index$")


def now() -> str:
    """The current time as RFC 3339 UTC, e.g. 2024-05-01T12:00:00Z."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_name(job_dir: str) -> str:
    """The job's name: the last component of its directory, validated like every user-chosen name."""
    return validate_name(str(job_dir).rstrip("/").replace("\\", "/").rsplit("/", 1)[-1], "job name")


def job_file(job_dir: str) -> str:
    return storage.join(job_dir, JOB_FILE)


def config_path(job_dir: str) -> str:
    return storage.join(job_dir, CONFIG_FILE)


def export_dir(job_dir: str) -> str:
    return storage.join(job_dir, EXPORT)


def sample_name(step: int) -> str:
    """`samples/` entry of a step's grid (step zero-padded to 7 digits; `eval/` uses the same padding)."""
    return f"step_{step:07d}.png"


def metrics_name(step: int) -> str:
    """`eval/` entry of a step's evaluation (step zero-padded to 7 digits, as `samples/`)."""
    return f"metrics-{step:07d}.json"


def metrics_path(job_dir: str, step: int) -> str:
    return storage.join(job_dir, EVAL, metrics_name(step))


def checkpoint_name(step: int) -> str:
    """A checkpoint as the job dir names it: `checkpoints/ckpt-<step>` (its files add .index, .data-*)."""
    return f"{CHECKPOINTS}/{CHECKPOINT_PREFIX}-{step}"


def checkpoint_steps(job_dir: str) -> list[int]:
    """The steps of the checkpoints in the job's `checkpoints/`, ascending (TensorFlow-free)."""
    directory = storage.join(job_dir, CHECKPOINTS)
    if not storage.isdir(directory):
        return []
    found = (_CHECKPOINT_INDEX.match(name) for name in storage.listdir(directory))
    return sorted(int(match.group(1)) for match in found if match)


def read(job_dir: str) -> dict | None:
    """The job's record, or None when the job has none yet."""
    path = job_file(job_dir)
    return storage.read_json(path) if storage.exists(path) else None


def new_record(job_dir: str, model: str = "", data_dir: str = "", max_steps: int | None = None,
               args: list[str] | None = None) -> dict:
    return {"name": job_name(job_dir), "model": model, "state": QUEUED, "created": now(), "started": None,
            "ended": None, "step": 0, "max_steps": max_steps, "data_dir": data_dir, "args": list(args or []),
            "error": None}


class Job:
    """The job.json of one job dir, kept current: `update(...)` changes fields and writes the whole file."""

    def __init__(self, job_dir: str, record: dict, writable: bool = True):
        self.job_dir, self.record, self.writable = job_dir, record, writable

    @classmethod
    def open(cls, job_dir: str, writable: bool = True, **fields) -> "Job":
        """Load the job's record (or start a QUEUED one) and apply `fields` that are not None."""
        record = read(job_dir) or new_record(job_dir)
        record = {**{name: record.get(name) for name in FIELDS},  # exactly the contract's fields (+ "best")
                  **{name: record[name] for name in OPTIONAL_FIELDS if record.get(name) is not None}}
        job = cls(job_dir, record, writable)
        job.update(**{k: v for k, v in fields.items() if v is not None})
        return job

    def update(self, **fields) -> None:
        unknown = set(fields) - set(FIELDS) - set(OPTIONAL_FIELDS)
        if unknown:
            raise ValueError(f"unknown job.json field(s): {', '.join(sorted(unknown))}")
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown job state {fields['state']!r}")
        self.record.update(fields)
        if self.writable:
            storage.write_json(job_file(self.job_dir), self.record)

    def set_state(self, state: str, **fields) -> None:
        """Move to `state`, stamping `started` (RUNNING) or `ended` (final states)."""
        if state == RUNNING:
            fields.setdefault("started", now())
            fields.setdefault("ended", None)
            fields.setdefault("error", None)
        elif state in FINAL_STATES:
            fields.setdefault("ended", now())
        self.update(state=state, **fields)

    @property
    def state(self) -> str:
        return self.record["state"]


# ---------------------------------------------------------------- the jobs of a GENART_HOME


def _created_sort_key(job: dict) -> tuple:
    """Newest first; jobs without a readable `created` time last."""
    try:
        created = datetime.datetime.fromisoformat(str(job.get("created")).replace("Z", "+00:00"))
        if created.tzinfo is None:
            created = created.replace(tzinfo=datetime.timezone.utc)
        return (0, -created.timestamp(), job["name"])
    except ValueError:
        return (1, 0.0, job["name"])


def read_job(name: str, genart_home: str | None = None) -> dict | None:
    """Job `name`'s record under `$GENART_HOME/jobs/` (with `name` filled in), or None when it has none or it is
    unreadable (being rewritten, or damaged)."""
    try:
        job = read(storage.join(home.jobs_dir(genart_home), name))
    except (OSError, ValueError):
        return None
    if not isinstance(job, dict):
        return None
    job.setdefault("name", name)
    return job


def list_jobs(genart_home: str | None = None, limit: int | None = 10) -> list[dict]:
    """The jobs under `jobs/` (their job.json), most recently created first; at most `limit` (None: all)."""
    root = home.jobs_dir(genart_home)
    if not storage.isdir(root):
        return []
    found = [job for job in (read_job(name, genart_home) for name in storage.listdir(root)) if job is not None]
    found.sort(key=_created_sort_key)
    return found if limit is None else found[:limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m artifacts.jobs", description="job.json helpers")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-name", help="exit 2 with a message unless NAME is a valid job name")
    check.add_argument("name")
    args = parser.parse_args(argv)
    return console.run(lambda: validate_name(args.name, "job name"), ValueError)


if __name__ == "__main__":
    sys.exit(main())
