"""Shared fixtures: a real `gcp-storage-emulator` on 127.0.0.1, free ports, quiet TensorFlow."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def gcs_emulator():
    """Start the real gcp-storage-emulator (in memory) and point STORAGE_EMULATOR_HOST at it."""
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    proc = subprocess.Popen([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=proc)
        host = f"http://127.0.0.1:{port}"
        old = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = host
        from artifacts import storage
        storage._client = None
        yield host
        if old is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = old
        storage._client = None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def gcs_bucket(gcs_emulator) -> str:
    """A fresh, empty bucket; returns its `gs://name` URL."""
    from artifacts import storage
    name = f"test-{uuid.uuid4().hex[:12]}"
    storage.gcs_client().create_bucket(name)
    return f"gs://{name}"
