"""The job dir as one worker sees it: where it writes, where it restores from, and syncing to `gs://`.

- Local job dir, chief: everything is written in place.
- `gs://` job dir, chief: written to a local staging dir; `push()` uploads new or changed files (and prunes
  checkpoints the CheckpointManager deleted) after every checkpoint and at the end. `pull_checkpoints()` fetches
  the remote checkpoints first, so a job resumes from a bucket.
- Non-chief workers (MultiWorkerMirroredStrategy): TensorFlow needs every worker to save checkpoints, so they
  write to a throwaway temp dir; they restore from the chief's checkpoints like the chief.
`gs://` data dirs are downloaded to a local temp dir (`stage_data`) before tf.data reads them.
"""
from __future__ import annotations

import contextlib
import logging
import os

from artifacts import storage
from artifacts.jobs import CHECKPOINTS

log = logging.getLogger("genart.trainer")


class JobDir:
    def __init__(self, job_dir: str, chief: bool = True):
        self.job_dir = job_dir
        self.chief = chief
        self.remote = storage.is_gcs(job_dir)
        self.staged = self.remote or not chief
        self.root = storage.local_staging_dir("genart-job-") if self.staged else job_dir
        self._temp_dirs = [self.root] if self.staged else []
        self._copies = contextlib.ExitStack()  # local copies of gs:// data
        self._pushed: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) as last uploaded
        os.makedirs(self.root, exist_ok=True)

    def local(self, *parts: str) -> str:
        """A local directory below this worker's write root (created)."""
        path = os.path.join(self.root, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def restore_dir(self) -> str:
        """The local directory holding the job's latest checkpoints (fetched from gs:// first)."""
        if self.remote:
            return self.pull_checkpoints()
        return os.path.join(self.job_dir, CHECKPOINTS)

    def pull_checkpoints(self) -> str:
        target = self.local(CHECKPOINTS)
        source = storage.join(self.job_dir, CHECKPOINTS)
        if storage.isdir(source):
            storage.copytree(source, target)
            for rel in storage.walk_files(target):
                self._pushed[f"{CHECKPOINTS}/{rel}"] = _signature(os.path.join(target, rel))
        return target

    def push(self) -> None:
        """Upload what changed since the last push (chief with a gs:// job dir only)."""
        if not (self.remote and self.chief):
            return
        local_files = set()
        for rel in storage.walk_files(self.root):
            local_files.add(rel)
            signature = _signature(os.path.join(self.root, rel))
            if self._pushed.get(rel) != signature:
                storage.upload_file(os.path.join(self.root, rel), storage.join(self.job_dir, rel))
                self._pushed[rel] = signature
        remote_checkpoints = storage.join(self.job_dir, CHECKPOINTS)
        for rel in storage.walk_files(remote_checkpoints):
            if f"{CHECKPOINTS}/{rel}" not in local_files:
                storage.remove(storage.join(remote_checkpoints, rel))
                self._pushed.pop(f"{CHECKPOINTS}/{rel}", None)

    def stage_data(self, data_dir: str) -> str:
        """A local directory with the job's TFRecords (a downloaded copy of a gs:// data dir, kept until
        `cleanup`)."""
        if storage.is_gcs(data_dir):
            log.info("downloading %s to a local copy", data_dir)
        return self._copies.enter_context(storage.local_copy(data_dir, "genart-data-"))

    def cleanup(self) -> None:
        self._copies.close()
        for path in self._temp_dirs:
            storage.rmtree(path)
        self._temp_dirs = []


def _signature(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
