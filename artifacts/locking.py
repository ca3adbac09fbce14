"""Concurrent writers of shared files: a local lock file (`locked`), and on gs://, GCS generation preconditions
(`create_exclusive`: first creator wins; `read_versioned` + `write_unless_changed`: read, merge, write back only
if nobody wrote in between). Paths are `artifacts.storage`'s (local or `gs://bucket/key`).
"""
from __future__ import annotations

import contextlib
import fcntl
import os

from artifacts import storage


@contextlib.contextmanager
def locked(path: str):
    """Hold an exclusive lock on the local file `path` (created if missing) for the with-block: processes of this
    machine (and of an NFS mount with working locks) take turns. The kernel drops it if the process dies."""
    if storage.is_gcs(path):
        raise ValueError(f"no lock files on gs:// ({path}): use generation preconditions")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _precondition_failed() -> type[Exception]:
    from google.api_core.exceptions import PreconditionFailed  # lazy, as google-cloud-storage in storage

    return PreconditionFailed


def create_exclusive(path: str, data: bytes) -> bool:
    """Create the file `path` with `data` unless it exists; False when it does (someone else created it first).
    Local: O_EXCL. gs://: an upload with `if_generation_match=0`, which GCS refuses (412) once the object exists."""
    if storage.is_gcs(path):
        try:
            storage._blob(path).upload_from_string(data, if_generation_match=0)
        except _precondition_failed():
            return False
        return True
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return True


def read_versioned(path: str) -> tuple[bytes | None, int | None]:
    """(the file's bytes, None when absent; a generation for `write_unless_changed`). gs://: the object's generation
    (0 when absent), read before its bytes, so newer bytes can only make the conditional write fail. Local: None
    (local writers take turns with `locked`)."""
    if not storage.is_gcs(path):
        return (storage.read_bytes(path) if os.path.exists(path) else None), None
    from google.api_core.exceptions import NotFound

    blob = storage._blob(path)
    blob = blob.bucket.get_blob(blob.name)
    if blob is None:
        return None, 0
    try:
        return blob.download_as_bytes(), blob.generation
    except NotFound:  # deleted meanwhile: writing on its old generation fails, and the caller reads again
        return None, blob.generation


def write_unless_changed(path: str, data: bytes, generation: int | None) -> bool:
    """Write `path` unless it changed since `read_versioned` gave `generation`; False when it did (read, merge and
    try again). gs://: `if_generation_match` (0: must still be absent). Local (generation None): a plain write."""
    if not storage.is_gcs(path):
        storage.write_bytes(path, data)
        return True
    try:
        storage._blob(path).upload_from_string(data, if_generation_match=generation)
    except _precondition_failed():
        return False
    return True
