"""The shared training loop through its real command line, `python -m trainer.task`, for every model in
`train_data.MODELS`: resume after SIGKILL, Ctrl-C, a non-finite loss, two workers, and a gs:// job dir."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest
from conftest import REPO_ROOT, free_port
from train_data import (TRAINED_MODELS, checkpoint_step, optimizer_iterations, read_job, trainer_command,
                        wait_until, write_data)

TIMEOUT = 240


def start(command, log_path, env=None) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})


def finish(proc: subprocess.Popen, log_path) -> str:
    proc.wait(TIMEOUT)
    with open(log_path) as f:
        return f.read()


@pytest.fixture(params=TRAINED_MODELS)
def model(request):
    return request.param


@pytest.fixture
def data_dir(model, tmp_path):
    return write_data(model, tmp_path / "data")


def test_resume_after_sigkill_continues_from_the_checkpoint(model, data_dir, tmp_path):
    job = tmp_path / "resumed"
    command = trainer_command(model, data_dir, job, max_steps=200, checkpoint_every_steps=10,
                              summary_every_steps=10, sample_every_steps=1000)
    proc = start(command, tmp_path / "first.log")
    wait_until(lambda: checkpoint_step(job) is not None, TIMEOUT, proc, "the first checkpoint")
    proc.kill()
    proc.wait()
    killed_at = checkpoint_step(job)
    assert 0 < killed_at < 200, "the run should have been killed mid-way"
    assert set(optimizer_iterations(str(job / "checkpoints" / f"ckpt-{killed_at}")).values()) == {killed_at}

    proc = start(command, tmp_path / "second.log")  # the very same command
    out = finish(proc, tmp_path / "second.log")
    assert proc.returncode == 0, out
    assert f"at step {killed_at}" in out and "resumed from" in out
    record = read_job(job)
    assert record["state"] == "SUCCEEDED" and record["step"] == 200, record
    # Every optimizer continued from the checkpoint: iterations == steps, none trained twice or lost.
    assert set(optimizer_iterations(str(job / "checkpoints" / "ckpt-200")).values()) == {200}


def test_sigint_saves_a_checkpoint_and_cancels(model, data_dir, tmp_path):
    job = tmp_path / "interrupted"
    command = trainer_command(model, data_dir, job, max_steps=100000, checkpoint_every_steps=100000,
                              summary_every_steps=2)
    proc = start(command, tmp_path / "run.log")
    wait_until(lambda: (read_job(job) or {}).get("step", 0) >= 2, TIMEOUT, proc, "training steps")
    proc.send_signal(signal.SIGINT)
    out = finish(proc, tmp_path / "run.log")
    assert proc.returncode == 130, out
    record = read_job(job)
    assert record["state"] == "CANCELLED" and record["ended"], record
    assert checkpoint_step(job) == record["step"] >= 2
    assert "checkpoint saved" in out


def test_non_finite_loss_fails_the_job_naming_the_step(model, data_dir, tmp_path):
    job = tmp_path / "diverged"
    command = trainer_command(model, data_dir, job, max_steps=50, checkpoint_every_steps=1,
                              learning_rate=1e30)  # weights of ~1e30 after one Adam step overflow float32
    proc = start(command, tmp_path / "run.log")
    out = finish(proc, tmp_path / "run.log")
    assert proc.returncode == 1, out
    record = read_job(job)
    assert record["state"] == "FAILED", record
    match = re.search(r"non-finite loss at step (\d+)", record["error"])
    assert match, record["error"]
    bad_step = int(match.group(1))
    assert bad_step < 50 and match.group(0) in out
    assert checkpoint_step(job) == (bad_step - 1 or None)  # the last good step; the bad state is never saved


def test_multi_worker_runs_two_local_workers_to_the_same_step(model, data_dir, tmp_path):
    job = tmp_path / "two_workers"
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    command = trainer_command(model, data_dir, job, max_steps=6, checkpoint_every_steps=3,
                              summary_every_steps=3, sample_every_steps=3, strategy="multi_worker")
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(start(command, tmp_path / f"worker{index}.log", {"TF_CONFIG": json.dumps(tf_config)}))
    outputs = [finish(proc, tmp_path / f"worker{i}.log") for i, proc in enumerate(procs)]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out
        assert "finished at step 6" in out and "MultiWorkerMirroredStrategy with 2 replica(s)" in out
    record = read_job(job)  # written by the chief (worker 0) only
    assert record["state"] == "SUCCEEDED" and record["step"] == 6
    assert checkpoint_step(job) == 6


def test_gcs_job_dir_with_config_file_and_flag_override(model, data_dir, tmp_path, gcs_bucket):
    from artifacts import storage

    remote_data, job = f"{gcs_bucket}/data", f"{gcs_bucket}/jobs/on_gcs"
    storage.copytree(data_dir, remote_data)
    config_file = tmp_path / "tiny.json"
    config_file.write_text(json.dumps({"max_steps": 3, "checkpoint_every_steps": 2, "sample_every_steps": 2,
                                       "summary_every_steps": 1, "seed": 7}))
    command = trainer_command(model, remote_data, job, config=config_file) + ["--max-steps", "4"]
    proc = start(command, tmp_path / "run.log")
    out = finish(proc, tmp_path / "run.log")
    assert proc.returncode == 0, out
    record = storage.read_json(f"{job}/job.json")
    assert record["state"] == "SUCCEEDED" and record["step"] == 4, record
    config = storage.read_json(f"{job}/config.json")
    assert (config["max_steps"], config["seed"], config["checkpoint_every_steps"]) == (4, 7, 2)  # flag > file
    files = set(storage.walk_files(job))
    assert {"checkpoints/checkpoint", "checkpoints/ckpt-4.index", "samples/step_0000002.png"} <= files
    assert any(f.startswith("logs/events.out.tfevents") for f in files)

    proc = start(command[:-2] + ["--max-steps", "6"], tmp_path / "again.log")  # resume from the bucket
    out = finish(proc, tmp_path / "again.log")
    assert proc.returncode == 0 and "at step 4" in out, out
    assert storage.read_json(f"{job}/job.json")["step"] == 6
    assert "checkpoints/ckpt-6.index" in set(storage.walk_files(job))
