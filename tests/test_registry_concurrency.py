"""Concurrent deploys (issue 12): no model dropped from models.config, no two deploys in one version dir.

Real concurrent processes run the `create_model.sh` command (`serving.registry.cli.main`), started together at a
barrier. Each one is slowed where a race hurts (copying files, and between listing the models and writing
models.config), with delays chosen so that the unprotected code loses: two deploys of model `a` pick the same
version, and the deploy of `a` that lists first writes models.config last, without `b`.
Locally the registry lock serialises them. On gs:// the version is claimed with `ifGenerationMatch=0` and
models.config rewritten with a generation precondition; the stock gcp-storage-emulator ignores preconditions, so
these tests run `gcs_preconditions.py` (the emulator honouring them, as GCS documents): what they prove is that the
code asks for and reacts to the preconditions correctly, not that GCS honours them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from conftest import free_port, wait_for_port
from test_registry import EXPORT_FILES, make_job

from artifacts import locking, model_tree, storage
from serving import registry

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = """
import os, sys, time
from artifacts import model_tree, storage
from serving.registry import cli

job, model, copy_delay, list_delay, barrier, count = sys.argv[1:7]
real_copy, real_list = storage.copy_file, model_tree.list_models

def slow_copy(source, target):
    time.sleep(float(copy_delay))
    real_copy(source, target)

def slow_list(home=None):
    names = real_list(home)
    time.sleep(float(list_delay))
    return names

storage.copy_file, model_tree.list_models = slow_copy, slow_list
open(os.path.join(barrier, job), "w").close()
while len(os.listdir(barrier)) < int(count):
    time.sleep(0.01)
sys.exit(cli.main(["-j", job, "-n", model]))
"""
# job -> (model, seconds per copied file, seconds between listing the models and writing models.config)
DEPLOYS = {"j1": ("a", 0.1, 1.0), "j2": ("a", 0.15, 0.0), "j3": ("b", 0.3, 0.0)}


def make_jobs(home: str) -> None:
    for job in DEPLOYS:
        job_dir = make_job(home, job)
        storage.write_bytes(storage.join(job_dir, "export", "variables", "variables.data-00000-of-00001"),
                            job.encode() * 32)  # which job a version's files came from


def deploy_concurrently(home: str, barrier: str) -> list[subprocess.CompletedProcess]:
    os.makedirs(barrier)
    env = dict(os.environ, GENART_HOME=home, PYTHONPATH=REPO_ROOT)
    procs = [subprocess.Popen([sys.executable, "-c", DRIVER, job, model, str(copy_s), str(list_s), barrier,
                               str(len(DEPLOYS))], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for job, (model, copy_s, list_s) in DEPLOYS.items()]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in procs]


def assert_every_deploy_landed_whole(home: str, done: list[subprocess.CompletedProcess]) -> None:
    assert [d.returncode for d in done] == [0, 0, 0], [d.stderr[-500:] for d in done]
    models = storage.join(home, "models")
    assert model_tree.list_versions(storage.join(models, "a")) == [1, 2]
    assert model_tree.list_versions(storage.join(models, "b")) == [1]
    config = model_tree.read_models_config(model_tree.models_config_path(home))
    assert sorted(entry.name for entry in config.model_config_list.config) == ["a", "b"]
    sources = set()
    for model, version in (("a", 1), ("a", 2), ("b", 1)):
        version_dir = storage.join(models, model, str(version))
        files = set(storage.walk_files(version_dir)) - {model_tree.DEPLOY_CLAIM}
        assert files == set(EXPORT_FILES), files
        data = storage.read_bytes(storage.join(version_dir, "variables", "variables.data-00000-of-00001"))
        sources.add((model, data[:2].decode()))
        assert data == data[:2] * 32  # one job's bytes, whole
    assert sources == {("a", "j1"), ("a", "j2"), ("b", "j3")}


def test_concurrent_local_deploys_keep_every_model_and_version(tmp_path):
    home = str(tmp_path / "home")
    make_jobs(home)
    assert_every_deploy_landed_whole(home, deploy_concurrently(home, str(tmp_path / "barrier")))
    assert os.path.exists(os.path.join(home, "models", model_tree.REGISTRY_LOCK))
    assert model_tree.list_models(home) == ["a", "b"]  # the lock file is not a model


@pytest.fixture
def gcs_with_preconditions(monkeypatch):
    """A bucket on an emulator that honours ifGenerationMatch (tests/gcs_preconditions.py)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "tests", "gcs_preconditions.py"), "start",
                             "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=proc)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        monkeypatch.setattr(storage, "_client", None)
        name = f"test-{uuid.uuid4().hex[:12]}"
        storage.gcs_client().create_bucket(name)
        yield f"gs://{name}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_precondition_emulator_refuses_a_second_exclusive_create(gcs_with_preconditions):
    path = f"{gcs_with_preconditions}/x"
    assert locking.create_exclusive(path, b"first") and not locking.create_exclusive(path, b"second")
    assert storage.read_bytes(path) == b"first"


def test_concurrent_gcs_deploys_keep_every_model_and_version(gcs_with_preconditions, tmp_path):
    home = f"{gcs_with_preconditions}/genart"
    make_jobs(home)
    assert_every_deploy_landed_whole(home, deploy_concurrently(home, str(tmp_path / "barrier")))


def test_gcs_deploy_with_a_stale_listing_claims_the_next_free_version(gcs_with_preconditions, monkeypatch):
    """Another deploy claimed version 1 after this one listed the versions: the claim fails, 2 is taken."""
    home = f"{gcs_with_preconditions}/genart"
    monkeypatch.setenv("GENART_HOME", home)
    make_job(home, "j")
    assert registry.deploy("j", "art")[1] == 1
    monkeypatch.setattr(registry.deployment, "next_version", lambda base_path: 1)
    assert registry.deploy("j", "art")[1] == 2
    assert model_tree.list_versions(f"{home}/models/art") == [1, 2]
    with pytest.raises(registry.RegistryError, match="version 2 was just claimed"):
        monkeypatch.setattr(registry.deployment, "numbered_dirs", lambda base_path: {})  # stale: sees none
        registry.deploy("j", "art", version=2)
