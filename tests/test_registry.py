"""The registry and `create_model.sh` (INTERFACE.md section 4): job listing, refusals, version numbering,
models.config, crash safety between copy and rename, GENART_HOME, any cwd, gs:// homes.

The registry never looks inside a SavedModel, so these tests deploy fake exports (a few small files) and need no
TensorFlow: they are fast.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from artifacts import storage
from artifacts import home as home_dirs
from artifacts import jobs, model_tree
from serving import registry
from serving.registry.cli import format_jobs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "create_model.sh")
EXPORT_FILES = {"fingerprint.pb": b"f", "variables/variables.index": b"i",
                "variables/variables.data-00000-of-00001": b"d" * 64, "saved_model.pb": b"graph"}


def make_job(home: str, name: str, state: str = "SUCCEEDED", created: str = "2024-05-01T10:00:00Z",
             exported: bool = True, step: int = 100, model: str = "vaegan") -> str:
    job_dir = storage.join(home, "jobs", name)
    storage.write_json(storage.join(job_dir, "job.json"), {
        "name": name, "model": model, "state": state, "created": created, "started": created, "ended": None,
        "step": step, "max_steps": 100, "data_dir": "/data", "args": [],
        "error": "boom" if state == "FAILED" else None})
    if exported:
        for rel, data in EXPORT_FILES.items():
            storage.write_bytes(storage.join(job_dir, "export", rel), data)
    return job_dir


@pytest.fixture
def home(tmp_path, monkeypatch) -> str:
    path = str(tmp_path / "home")
    monkeypatch.setenv("GENART_HOME", path)
    return path


def run_script(*args: str, home: str, cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, GENART_HOME=home)
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


# ---------------------------------------------------------------- where things live


def test_genart_home_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("GENART_HOME", raising=False)
    assert home_dirs.genart_home() == os.path.join(REPO_ROOT, "workspace")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENART_HOME", "rel/home")
    assert home_dirs.genart_home() == str(tmp_path / "rel" / "home")  # absolute, so base_path is too
    assert home_dirs.models_dir() == str(tmp_path / "rel" / "home" / "models")
    assert home_dirs.jobs_dir() == str(tmp_path / "rel" / "home" / "jobs")
    assert model_tree.models_config_path("/x") == "/x/models/models.config"
    monkeypatch.setenv("GENART_HOME", "gs://b/h")
    assert model_tree.models_config_path() == "gs://b/h/models/models.config"


# ---------------------------------------------------------------- create_model.sh -l


def test_list_is_newest_first_limited_to_ten_fast_and_from_any_cwd(home, tmp_path):
    for i in range(12):  # created out of name order, one with fractional seconds, one without a job.json
        make_job(home, f"job_{i:02d}", created=f"2024-05-{(i * 7) % 12 + 1:02d}T10:00:00{'.5' if i == 3 else ''}Z")
    os.makedirs(os.path.join(home, "jobs", "not_a_job"))
    started = time.time()
    done = run_script("-l", home=home, cwd=str(tmp_path))
    elapsed = time.time() - started
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "MODEL", "STEP", "CREATED"]
    expected = [job["name"] for job in sorted(jobs.list_jobs(limit=None), key=lambda j: j["created"],
                                              reverse=True)][:10]
    assert [line.split()[0] for line in lines[1:]] == expected and len(expected) == 10
    assert lines[1].split() == ["job_05", "SUCCEEDED", "vaegan", "100", "2024-05-12T10:00:00Z"]
    assert elapsed < 5, f"-l took {elapsed:.1f}s (it must not import TensorFlow)"


def test_help_and_bad_usage(home, tmp_path):
    assert run_script("-h", home=home, cwd=str(tmp_path)).returncode == 0
    for args in ([], ["-x"], ["-j"], ["-l", "extra"]):
        done = run_script(*args, home=home, cwd=str(tmp_path))
        assert done.returncode == 2 and "usage" in done.stderr, args
    assert "no jobs" in run_script("-l", home=home, cwd=str(tmp_path)).stdout


def test_registry_cli_does_not_import_tensorflow(home):
    make_job(home, "a")
    code = ("import sys; from serving.registry import cli; from artifacts import model_tree; cli.main(['-l']); "
            "cli.main(['-j', 'a']); model_tree.read_models_config(model_tree.models_config_path()); "
            "sys.exit([m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')] != [])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_format_jobs_aligns_columns_and_shows_missing_values():
    table = format_jobs([{"name": "a_long_job_name", "state": "RUNNING", "model": "vaegan", "step": 3,
                          "created": "2024-01-01T00:00:00Z"}, {"name": "b"}])
    header, first, second = table.splitlines()
    assert header.index("STATE") == first.index("RUNNING")
    assert second.split() == ["b", "-", "-", "-", "-"]


# ---------------------------------------------------------------- create_model.sh -j


def test_deploy_from_another_cwd_prints_path_and_how_to_serve(home, tmp_path):
    make_job(home, "faces")
    done = run_script("-j", "faces", home=home, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    version_dir = os.path.join(home, "models", "faces", "1")
    assert version_dir in done.stdout and model_tree.models_config_path() in done.stdout
    assert "serving.server" in done.stdout and "tensorflow_model_server" in done.stdout
    for rel, data in EXPORT_FILES.items():
        assert storage.read_bytes(os.path.join(version_dir, rel)) == data


@pytest.mark.parametrize("state", ["RUNNING", "FAILED", "CANCELLED", "QUEUED"])
def test_job_without_export_is_refused_with_its_state(home, tmp_path, state):
    make_job(home, "pending", state=state, exported=False)
    done = run_script("-j", "pending", home=home, cwd=str(tmp_path))
    assert done.returncode == 2
    assert f"state {state}" in done.stderr and "no export" in done.stderr
    assert ("boom" in done.stderr) == (state == "FAILED")  # a failed job's error is shown
    assert not os.path.exists(os.path.join(home, "models", "pending"))


def test_unknown_job_and_bad_names_and_versions_are_refused(home):
    make_job(home, "ok")
    refusals = [
        (dict(job_name="missing"), "no job named 'missing'"),
        (dict(job_name="bad-name"), "invalid job name"),
        (dict(job_name="ok", model_name="1starts_with_digit"), "invalid model name"),
        (dict(job_name="ok", model_name="../escape"), "invalid model name"),
        (dict(job_name="ok", version="0"), "invalid version"),
        (dict(job_name="ok", version="-3"), "invalid version"),
        (dict(job_name="ok", version="two"), "invalid version"),
        (dict(job_name="ok", version="1.5"), "invalid version"),
    ]
    for kwargs, message in refusals:
        with pytest.raises(registry.RegistryError, match=message.replace(".", r"\.")):
            registry.deploy(**kwargs)
    assert not os.path.exists(home_dirs.models_dir())


def test_version_numbering_explicit_versions_and_duplicates(home):
    make_job(home, "job_a")
    make_job(home, "job_b")
    assert registry.deploy("job_a", "art")[:2] == ("art", 1)
    assert registry.deploy("job_b", "art")[:2] == ("art", 2)
    assert registry.deploy("job_a", "art", version="7")[:2] == ("art", 7)
    assert registry.deploy("job_b", "art")[:2] == ("art", 8)
    with pytest.raises(registry.RegistryError, match=r"already has version 7.*version 9"):
        registry.deploy("job_b", "art", version=7)
    assert registry.deploy("job_a")[:2] == ("job_a", 1)  # model name defaults to the job name
    base = os.path.join(home, "models", "art")
    assert model_tree.list_versions(base) == [1, 2, 7, 8] and model_tree.latest_version(base) == 8
    assert model_tree.resolve_model_dir("art") == os.path.join(base, "8")
    assert model_tree.resolve_model_dir("art", "2") == os.path.join(base, "2")
    with pytest.raises(model_tree.ModelTreeError, match="no version 3"):
        model_tree.resolve_model_dir("art", 3)
    with pytest.raises(model_tree.ModelTreeError, match="no model named 'nope'.*art, job_a"):
        model_tree.resolve_model_dir("nope")


def test_list_versions_counts_only_numbered_dirs_with_saved_model_pb(tmp_path):
    base = tmp_path / "m"
    for name, complete in (("1", True), ("3", False), ("10", True), ("x", True), (".tmp-1", True), ("0", True)):
        (base / name).mkdir(parents=True)
        if complete:
            (base / name / "saved_model.pb").write_bytes(b"g")
    assert model_tree.list_versions(str(base)) == [1, 10]
    assert model_tree.list_versions(str(tmp_path / "absent")) == [] and model_tree.latest_version(str(base)) == 10


def test_incomplete_numbered_dir_is_skipped_not_reused(home):
    make_job(home, "j")
    os.makedirs(os.path.join(home, "models", "art", "4"))  # e.g. an interrupted manual copy
    with pytest.raises(registry.RegistryError, match="incomplete"):
        registry.deploy("j", "art", version=4)
    assert registry.deploy("j", "art")[:2] == ("art", 5)


# ---------------------------------------------------------------- models.config


def test_models_config_parses_back_and_names_every_model(home):
    make_job(home, "j")
    for model in ("zeta", "alpha", "mid"):
        registry.deploy("j", model)
    text = storage.read_text(model_tree.models_config_path())
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    entries = {entry.name: entry for entry in config.model_config_list.config}
    assert sorted(entries) == ["alpha", "mid", "zeta"]
    for name, entry in entries.items():
        assert entry.base_path == os.path.join(home, "models", name) and os.path.isabs(entry.base_path)
        assert entry.model_platform == "tensorflow"
    assert model_tree.read_models_config(model_tree.models_config_path()) == config


def test_a_models_config_for_some_models_written_elsewhere(home, tmp_path):
    """What demo.sh serves: a config naming only its own models, leaving the registry's file as it is."""
    make_job(home, "j")
    for model in ("demo", "mine"):
        registry.deploy("j", model)
    before = storage.read_text(model_tree.models_config_path())
    path = model_tree.write_models_config(names=["demo"], path=str(tmp_path / "demo.config"))
    [entry] = model_tree.read_models_config(path).model_config_list.config
    assert (entry.name, entry.base_path) == ("demo", os.path.join(home, "models", "demo"))
    assert storage.read_text(model_tree.models_config_path()) == before


def test_models_config_keeps_a_users_version_policy(home):
    make_job(home, "j")
    registry.deploy("j", "art")
    path = model_tree.models_config_path()
    config = model_tree.read_models_config(path)
    config.model_config_list.config[0].model_version_policy.all.SetInParent()
    storage.write_text(path, text_format.MessageToString(config))
    registry.deploy("j", "other")
    entries = {e.name: e for e in model_tree.read_models_config(path).model_config_list.config}
    assert entries["art"].model_version_policy.HasField("all") and sorted(entries) == ["art", "other"]
    storage.write_text(path, "not { a config")
    with pytest.raises(model_tree.ModelTreeError, match="not a valid TF Serving model config"):
        model_tree.read_models_config(path)
    model_tree.write_models_config()  # a broken file is replaced
    assert len(model_tree.read_models_config(path).model_config_list.config) == 2


# ---------------------------------------------------------------- crash safety


def test_failed_rename_leaves_no_numbered_dir(home, monkeypatch):
    make_job(home, "j")

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="disk gone"):
        registry.deploy("j", "art")
    assert os.listdir(os.path.join(home, "models", "art")) == []  # staging removed, nothing numbered


def test_process_killed_between_copy_and_rename_leaves_no_numbered_dir(home):
    make_job(home, "j")
    code = ("import os, signal; from serving import registry; "
            "os.rename = lambda *a: os.kill(os.getpid(), signal.SIGKILL); registry.deploy('j', 'art')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, timeout=60)
    assert done.returncode == -9
    base = os.path.join(home, "models", "art")
    leftovers = os.listdir(base)
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")  # the copy got there, the rename did not
    assert all(not name.isdigit() for name in leftovers)
    assert model_tree.list_versions(base) == [] and model_tree.list_models() == []
    assert registry.deploy("j", "art")[:2] == ("art", 1)


# ---------------------------------------------------------------- gs:// homes


def test_gcs_home_deploys_with_saved_model_pb_last(gcs_bucket, monkeypatch, tmp_path):
    home = f"{gcs_bucket}/genart"
    monkeypatch.setenv("GENART_HOME", home)
    make_job(home, "old", created="2024-01-01T00:00:00Z")
    make_job(home, "new", state="RUNNING", created="2024-02-01T00:00:00Z", exported=False)
    assert [job["name"] for job in jobs.list_jobs()] == ["new", "old"]
    with pytest.raises(registry.RegistryError, match="state RUNNING"):
        registry.deploy("new")

    written = []
    real_copy = storage.copy_file
    monkeypatch.setattr(storage, "copy_file", lambda source, target: (written.append(target), real_copy(source, target)))
    name, version, path = registry.deploy("old", "art")
    assert (name, version, path) == ("art", 1, f"{home}/models/art/1")
    version_files = [p for p in written if p.startswith(path + "/")]
    assert version_files[-1] == f"{path}/saved_model.pb" and len(version_files) == len(EXPORT_FILES)
    assert registry.deploy("old", "art")[1] == 2
    assert model_tree.list_versions(f"{home}/models/art") == [1, 2]
    assert model_tree.resolve_model_dir("art") == f"{home}/models/art/2"
    config = model_tree.read_models_config(model_tree.models_config_path())
    assert [(e.name, e.base_path) for e in config.model_config_list.config] == [("art", f"{home}/models/art")]

    done = run_script("-l", home=home, cwd=str(tmp_path))
    assert done.returncode == 0 and [line.split()[0] for line in done.stdout.splitlines()[1:]] == ["new", "old"]
