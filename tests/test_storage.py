"""artifacts.storage: the same small API on local paths and on gs:// (against the real gcp-storage-emulator)."""
from __future__ import annotations

import os
import stat
import threading

import pytest

from artifacts import storage


# ---------------------------------------------------------------- paths


def test_join_and_scheme():
    assert storage.is_gcs("gs://b/x") and not storage.is_gcs("/tmp/x")
    assert storage.join("gs://b/data/", "/A/", "manifest.json") == "gs://b/data/A/manifest.json"
    assert storage.join("/tmp/a", "b", "c.txt") == os.path.join("/tmp/a", "b", "c.txt")
    with pytest.raises(ValueError, match="bucket"):
        storage.read_bytes("gs:///no-bucket")


# ---------------------------------------------------------------- local


def test_local_write_read_round_trip_with_usual_permissions(tmp_path):
    path = str(tmp_path / "deep" / "er" / "f.json")
    storage.write_json(path, {"a": [1, 2]})
    assert storage.read_json(path) == {"a": [1, 2]}
    storage.write_text(path, "héllo")
    assert storage.read_text(path) == "héllo" and storage.read_bytes(path) == "héllo".encode()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~storage._UMASK  # not mkstemp's 0600
    assert not [n for n in os.listdir(tmp_path / "deep" / "er") if n.startswith(".tmp-")]


def test_local_read_refuses_fifo_and_directory_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result = {}
    reader = threading.Thread(target=lambda: result.update(error=_error_of(storage.read_bytes, str(fifo))))
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "read_bytes blocked on a FIFO"
    assert isinstance(result["error"], OSError) and "not a regular file" in str(result["error"])
    with pytest.raises(IsADirectoryError):
        storage.read_bytes(str(tmp_path))


def _error_of(fn, *args):
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc
    return None


def test_local_listing_walk_glob_and_symlink_loop(tmp_path):
    for rel in ("b.txt", "a/2.png", "a/1.png", "a/sub/x.jpg"):
        storage.write_bytes(str(tmp_path / rel), b"x")
    os.symlink("..", tmp_path / "a" / "sub" / "up")  # a directory loop
    assert storage.listdir(str(tmp_path)) == ["a", "b.txt"]
    assert storage.isdir(str(tmp_path / "a")) and not storage.isdir(str(tmp_path / "b.txt"))
    assert storage.exists(str(tmp_path / "b.txt")) and not storage.exists(str(tmp_path / "nope"))
    walked = list(storage.walk_files(str(tmp_path)))
    assert walked == ["b.txt", "a/1.png", "a/2.png", "a/sub/x.jpg"]  # each file once, loop not followed
    assert storage.glob(str(tmp_path / "a" / "*.png")) == [str(tmp_path / "a" / "1.png"),
                                                          str(tmp_path / "a" / "2.png")]


def test_local_replace_dir_and_rmtree(tmp_path):
    final, staging = str(tmp_path / "out"), str(tmp_path / "stage")
    storage.write_bytes(os.path.join(final, "old-00000-of-00002.tfrecord"), b"old")
    storage.write_bytes(os.path.join(staging, "new.tfrecord"), b"new")
    storage.replace_dir(staging, final)
    assert os.listdir(final) == ["new.tfrecord"] and not os.path.exists(staging)
    assert sorted(os.listdir(tmp_path)) == ["out"]  # the moved-aside old dir is gone too
    storage.rmtree(final)
    storage.rmtree(final)  # missing is fine
    assert not os.path.exists(final)


# ---------------------------------------------------------------- gs://


def test_gcs_write_read_list_walk_glob(gcs_bucket):
    root = f"{gcs_bucket}/data"
    storage.write_json(f"{root}/manifest.json", {"v": 1})
    for rel in ("A/train-00000-of-00001.tfrecord", "A/sub/x.png", "b.txt"):
        storage.write_bytes(f"{root}/{rel}", rel.encode())
    storage.write_bytes(f"{gcs_bucket}/data2/other.txt", b"not below data/")
    assert storage.read_json(f"{root}/manifest.json") == {"v": 1}
    assert storage.read_bytes(f"{root}/b.txt") == b"b.txt"
    assert storage.exists(f"{root}/b.txt") and storage.exists(f"{root}/A") and not storage.exists(f"{root}/zz")
    assert storage.isdir(root) and storage.isdir(f"{root}/A") and not storage.isdir(f"{root}/b.txt")
    assert storage.listdir(root) == ["A", "b.txt", "manifest.json"]
    assert sorted(storage.walk_files(root)) == ["A/sub/x.png", "A/train-00000-of-00001.tfrecord", "b.txt",
                                                "manifest.json"]
    assert storage.glob(f"{root}/A/train-*-of-*.tfrecord") == [f"{root}/A/train-00000-of-00001.tfrecord"]
    storage.remove(f"{root}/b.txt")
    assert not storage.exists(f"{root}/b.txt")


def test_gcs_copy_upload_download_and_replace_dir(gcs_bucket, tmp_path):
    local = tmp_path / "src"
    storage.write_bytes(str(local / "a.bin"), b"\x00\x01")
    storage.write_bytes(str(local / "d" / "b.bin"), b"\x02")
    storage.copytree(str(local), f"{gcs_bucket}/copy")
    assert sorted(storage.walk_files(f"{gcs_bucket}/copy")) == ["a.bin", "d/b.bin"]
    storage.copytree(f"{gcs_bucket}/copy", f"{gcs_bucket}/copy2")  # bucket -> bucket
    storage.download_file(f"{gcs_bucket}/copy2/d/b.bin", str(tmp_path / "back" / "b.bin"))
    assert (tmp_path / "back" / "b.bin").read_bytes() == b"\x02"
    storage.upload_file(str(local / "a.bin"), f"{gcs_bucket}/up/a.bin")
    assert storage.read_bytes(f"{gcs_bucket}/up/a.bin") == b"\x00\x01"

    storage.write_bytes(f"{gcs_bucket}/final/stale-00000-of-00009.tfrecord", b"stale")
    storage.replace_dir(str(local), f"{gcs_bucket}/final")
    assert sorted(storage.walk_files(f"{gcs_bucket}/final")) == ["a.bin", "d/b.bin"]
    assert not local.exists()  # the staging dir is consumed
    storage.rmtree(f"{gcs_bucket}/final")
    assert not storage.isdir(f"{gcs_bucket}/final")
