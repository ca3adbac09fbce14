"""File access for the whole project: local paths and `gs://bucket/key` URLs behind one small API.

Besides reading and writing, it owns the two patterns every artifact writer needs: `local_copy` (a local view of
a possibly remote directory, for libraries that only read local files) and `publish` (make a staged directory
appear at its final place complete or not at all, its marker file written last where there is no rename).

Local files use the standard library; `gs://` uses google-cloud-storage (imported lazily, so commands that never
touch a bucket do not pay for it). `STORAGE_EMULATOR_HOST` is honoured by the client library itself, which is how
the tests talk to `gcp-storage-emulator`. GCS has no directories: a "directory" is a key prefix ending in "/".
"""
from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import shutil
import stat
import tempfile
import uuid
from typing import Iterable, Iterator

GCS_SCHEME = "gs://"
_UMASK = os.umask(0o022)  # read the process umask once (umask() can only be read by setting it)
os.umask(_UMASK)


def is_gcs(path: str) -> bool:
    return str(path).startswith(GCS_SCHEME)


def join(base: str, *parts: str) -> str:
    if is_gcs(base):
        out = base.rstrip("/")
        for part in parts:
            out = f"{out}/{str(part).strip('/')}"
        return out
    return os.path.join(base, *parts)


def _split(path: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> ("bucket", "a/b")."""
    rest = path[len(GCS_SCHEME):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"not a gs:// URL with a bucket: {path!r}")
    return bucket, key


_client = None


def gcs_client():
    """One google-cloud-storage client per process (honours STORAGE_EMULATOR_HOST)."""
    global _client
    if _client is None:
        from google.cloud import storage  # lazy: only bucket users pay for the import

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            _client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "genart"),
                                     credentials=AnonymousCredentials())
        else:
            _client = storage.Client()
    return _client


def _blob(path: str):
    bucket, key = _split(path)
    return gcs_client().bucket(bucket).blob(key)


def _prefix(path: str) -> tuple[str, str]:
    bucket, key = _split(path)
    return bucket, (key.rstrip("/") + "/") if key.strip("/") else ""


def exists(path: str) -> bool:
    if not is_gcs(path):
        return os.path.exists(path)
    return _blob(path).exists() or isdir(path)


def stamp(path: str) -> str | None:
    """What changes whenever the file at `path` is rewritten: its mtime locally, its object generation on gs://
    (where mtimes are not kept); None if there is no such file."""
    if not is_gcs(path):
        try:
            return f"mtime:{os.stat(path).st_mtime_ns}"
        except OSError:
            return None
    from google.api_core import exceptions

    blob = _blob(path)
    try:
        blob.reload()
    except exceptions.NotFound:
        return None
    return f"generation:{blob.generation}"


def isdir(path: str) -> bool:
    if not is_gcs(path):
        return os.path.isdir(path)
    bucket, prefix = _prefix(path)
    return any(True for _ in gcs_client().list_blobs(bucket, prefix=prefix, max_results=1))


def listdir(path: str) -> list[str]:
    """Names directly below `path` (files and sub-directories), sorted."""
    if not is_gcs(path):
        return sorted(os.listdir(path))
    bucket, prefix = _prefix(path)
    names = set()
    for blob in gcs_client().list_blobs(bucket, prefix=prefix):
        rest = blob.name[len(prefix):]
        if rest:
            names.add(rest.split("/", 1)[0])
    return sorted(names)


def walk_files(root: str) -> Iterator[str]:
    """Every file below `root`, as a path relative to it with "/" separators (sorted per directory).

    Local symlinked directories are followed once; loops are detected by (device, inode) and skipped.
    """
    if is_gcs(root):
        bucket, prefix = _prefix(root)
        for blob in gcs_client().list_blobs(bucket, prefix=prefix):
            if not blob.name.endswith("/"):
                yield blob.name[len(prefix):]
        return
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(filenames):
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            yield rel.replace(os.sep, "/")


def glob(pattern: str) -> list[str]:
    """Paths matching a `*`/`?` pattern (local: glob.glob; gs://: prefix listing + fnmatch)."""
    if not is_gcs(pattern):
        import glob as _glob

        return sorted(_glob.glob(pattern))
    bucket, key = _split(pattern)
    literal = key.split("*", 1)[0].split("?", 1)[0]
    return sorted(f"{GCS_SCHEME}{bucket}/{blob.name}" for blob in gcs_client().list_blobs(bucket, prefix=literal)
                  if fnmatch.fnmatchcase(blob.name, key))


def read_bytes(path: str) -> bytes:
    """A whole file's bytes. Local paths must be regular files (or links to one): a FIFO, socket or device raises
    OSError instead of blocking forever or reading without end; a directory raises IsADirectoryError."""
    if not is_gcs(path):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait for a writer
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            if not stat.S_ISREG(mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
            return f.read()
    return _blob(path).download_as_bytes()


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole file; local writes go to a temp file renamed into place, so readers never see half a file."""
    if is_gcs(path):
        _blob(path).upload_from_string(data)
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions of a new file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def read_json(path: str):
    return json.loads(read_text(path))


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def makedirs(path: str) -> None:
    if not is_gcs(path):
        os.makedirs(path, exist_ok=True)


def remove(path: str) -> None:
    if is_gcs(path):
        _blob(path).delete()
    else:
        os.remove(path)


def rmtree(path: str) -> None:
    """Remove a directory tree; missing is fine."""
    if not is_gcs(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    bucket, prefix = _prefix(path)
    blobs = list(gcs_client().list_blobs(bucket, prefix=prefix))
    for blob in blobs:
        blob.delete()


def upload_file(local_path: str, path: str) -> None:
    if is_gcs(path):
        _blob(path).upload_from_filename(local_path)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        shutil.copyfile(local_path, path)


def download_file(path: str, local_path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
    if is_gcs(path):
        _blob(path).download_to_filename(local_path)
    else:
        shutil.copyfile(path, local_path)


def copy_file(source: str, target: str) -> None:
    """Copy one file, either side local or gs:// (bucket to bucket is a server-side copy)."""
    if is_gcs(source) and is_gcs(target):
        s_bucket, s_key = _split(source)
        d_bucket, d_key = _split(target)
        client = gcs_client()
        client.bucket(s_bucket).copy_blob(client.bucket(s_bucket).blob(s_key), client.bucket(d_bucket), d_key)
    elif is_gcs(target):
        upload_file(source, target)
    else:
        download_file(source, target)


def copytree(src: str, dst: str, last: tuple[str, ...] | list[str] = ()) -> None:
    """Copy every file below `src` to the same relative path below `dst` (either side local or gs://).

    `last`: relative paths copied after every other file (completion markers such as `saved_model.pb`).
    """
    for rel in sorted(walk_files(src), key=lambda rel: rel in last):
        copy_file(join(src, rel), join(dst, rel))


def replace_dir(staging: str, final: str) -> None:
    """Make `staging` appear at `final` as a whole.

    Local: rename (atomic on one file system; an existing `final` is moved aside first and removed after).
    gs://: objects are copied, then the staging prefix is deleted (GCS has no atomic rename; readers should look
    for a completion marker such as `saved_model.pb` or `manifest.json`, which callers write last).
    """
    if is_gcs(final):
        rmtree(final)
        copytree(staging, final)
        rmtree(staging)
        return
    old = None
    if os.path.exists(final):
        old = f"{final.rstrip(os.sep)}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
    os.replace(staging, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def local_staging_dir(prefix: str = "genart-") -> str:
    """A fresh local temp directory (for staging gs:// data or outputs)."""
    return tempfile.mkdtemp(prefix=prefix)


@contextlib.contextmanager
def local_copy(path: str, prefix: str = "genart-copy-", files: Iterable[str] | None = None):
    """Yield a local directory with `path`'s files: `path` itself when local, else a temp copy removed on exit.

    For readers that only understand local files (TensorFlow's loaders know nothing of STORAGE_EMULATOR_HOST).
    `files`: copy only these relative paths (8 downloads at a time) instead of the whole tree.
    """
    if not is_gcs(path):
        yield path
        return
    local = local_staging_dir(prefix)
    try:
        if files is not None:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda rel: download_file(join(path, rel), os.path.join(local, rel)), files))
        elif isdir(path):
            copytree(path, local)
        yield local
    finally:
        rmtree(local)


def publish(staging: str, final: str, markers: tuple[str, ...] | list[str] = ()) -> None:
    """Make the local directory `staging` appear at `final` (local or gs://) complete, or not at all.

    `markers` are the relative paths of the files whose presence marks the artifact complete (`saved_model.pb`,
    `manifest.json`). Local: `staging` must be on the same file system; it is renamed into place
    (`replace_dir`). gs:// has no rename: the old markers are deleted first (so the old copy stops counting as
    complete), then the old objects, then the files are uploaded with the markers last; `staging` is removed.
    """
    if not is_gcs(final):
        replace_dir(staging, final)
        return
    for marker in markers:
        if exists(join(final, marker)):
            remove(join(final, marker))
    rmtree(final)
    copytree(staging, final, last=markers)
    rmtree(staging)
