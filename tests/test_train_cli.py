"""The trainer's command lines: flag/config resolution, job names, job.json, `run_training.sh` end to end."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, free_port, wait_for_port
from train_data import checkpoint_step, read_job, wait_until

from artifacts import jobs
from trainer.prepare import stale_reason
from trainer.task import resolve_config

RUN_TRAINING = os.path.join(REPO_ROOT, "run_training.sh")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _write_json(path, obj) -> str:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


# ---------------------------------------------------------------- configuration


def test_flags_override_the_config_file(tmp_path):
    config_file = _write_json(tmp_path / "c.json", {"max_steps": 5, "base_filters": 16, "seed": 3})
    config = resolve_config(["--data-dir", "d", "--job-dir", str(tmp_path / "j"), "--config", config_file,
                             "--max-steps", "9", "--learning-rate", "1e-3"])
    assert (config.max_steps, config.base_filters, config.seed, config.learning_rate) == (9, 16, 3, 1e-3)
    assert config.config == config_file


def test_model_may_be_a_json_config(tmp_path):
    config_file = _write_json(tmp_path / "m.json", {"model": "vaegan", "latent_dim": 12})
    config = resolve_config(["--data-dir", "d", "--job-dir", "j", "--model", config_file])
    assert (config.model, config.latent_dim, config.config) == ("vaegan", 12, config_file)
    with pytest.raises(ValueError, match="once"):
        resolve_config(["--data-dir", "d", "--job-dir", "j", "--model", config_file, "--config", config_file])


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown configuration key.*max_stepz"):
        resolve_config(["--data-dir", "d", "--job-dir", "j", "--config",
                        _write_json(tmp_path / "bad.json", {"max_stepz": 1})])
    with pytest.raises(ValueError, match="--data-dir is required"):
        resolve_config(["--job-dir", "j"])
    with pytest.raises(ValueError, match="multiple of 16"):
        resolve_config(["--data-dir", "d", "--job-dir", "j", "--image-size", "40"])


def test_a_resumed_job_keeps_its_settings_and_the_data_sets_size_and_crop(tmp_path):
    data, job = tmp_path / "data", tmp_path / "job"
    _write_json(data / "manifest.json", {"version": 1, "image_size": 32, "center_crop": True})
    config = resolve_config(["--data-dir", str(data), "--job-dir", str(job)])
    assert (config.image_size, config.center_crop) == (32, True)  # from the manifest
    assert resolve_config(["--data-dir", str(data), "--job-dir", str(job), "--image-size", "64"]).image_size == 64
    _write_json(job / "config.json", {**config.to_dict(), "base_filters": 8, "max_steps": 7})
    resumed = resolve_config(["--data-dir", str(data), "--job-dir", str(job), "--max-steps", "20"])
    assert (resumed.base_filters, resumed.max_steps) == (8, 20)


def test_help_and_argument_errors_do_not_import_tensorflow():
    code = ("import sys; from trainer import task, prepare; from artifacts import jobs\n"
            "try:\n    task.main(['--help'])\nexcept SystemExit: pass\n"
            "assert task.main(['--job-dir', 'x']) == 2\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--checkpoint-every-steps" in result.stdout and "--data-dir is required" in result.stderr


# ---------------------------------------------------------------- job names and job.json


def test_bad_job_names_are_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "trainer.task", "--data-dir", str(tmp_path),
                             "--job-dir", str(tmp_path / "bad-name")], cwd=REPO_ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 2 and "invalid job name 'bad-name'" in result.stderr
    result = subprocess.run([RUN_TRAINING, "-d", str(tmp_path), "-j", "9lives"], capture_output=True, text=True,
                            env={**os.environ, "GENART_HOME": str(tmp_path / "home")})
    assert result.returncode == 2 and "invalid job name '9lives'" in result.stderr
    assert not os.path.exists(tmp_path / "home" / "jobs" / "9lives")


def test_job_json_has_exactly_the_contract_fields_and_rfc3339_times(tmp_path):
    job = jobs.Job.open(str(tmp_path / "j1"), model="vaegan", data_dir="d", max_steps=3, args=["--x"])
    record = read_job(tmp_path / "j1")
    assert list(record) == list(jobs.FIELDS) and record["state"] == "QUEUED" and record["name"] == "j1"
    assert RFC3339_UTC.match(record["created"]) and record["started"] is None
    job.set_state(jobs.RUNNING, step=1)
    job.set_state(jobs.SUCCEEDED, step=3)
    record = read_job(tmp_path / "j1")
    assert record["state"] == "SUCCEEDED" and record["step"] == 3 and record["args"] == ["--x"]
    assert RFC3339_UTC.match(record["started"]) and RFC3339_UTC.match(record["ended"])
    with pytest.raises(ValueError):
        job.update(colour="red")
    assert list(read_job(tmp_path / "j1")) == list(jobs.FIELDS)  # no "best" until an evaluation has run
    best = {"step": 2, "metric": "kid_digits", "value": 0.5}
    job.update(best=best)
    assert list(read_job(tmp_path / "j1")) == [*jobs.FIELDS, "best"]
    reopened = jobs.Job.open(str(tmp_path / "j1"), max_steps=4)  # a resumed job keeps it
    assert reopened.record["best"] == best and list(read_job(tmp_path / "j1")) == [*jobs.FIELDS, "best"]


def test_data_is_preprocessed_again_only_when_its_settings_changed(tmp_path):
    source, data = tmp_path / "images", tmp_path / "data"
    os.makedirs(source)
    assert stale_reason(str(data), str(source), 64, False) == "no manifest.json yet"
    _write_json(data / "manifest.json", {"source": str(source), "image_size": 64, "center_crop": False})
    assert stale_reason(str(data), str(source), 64, False) is None
    assert "image_size 64 -> 32" in stale_reason(str(data), str(source), 32, False)
    assert "center_crop" in stale_reason(str(data), str(source), 64, True)
    assert "source" in stale_reason(str(data), str(tmp_path), 64, False)


# ---------------------------------------------------------------- run_training.sh


def test_run_training_end_to_end_from_another_directory_then_resume_and_ctrl_c(tmp_path):
    home, port = tmp_path / "home", free_port()
    env = {**os.environ, "GENART_HOME": str(home)}
    images = os.path.relpath(os.path.join(REPO_ROOT, "examples", "images"), tmp_path)  # relative to the cwd
    tiny = ["--image-size", "32", "--base-filters", "8", "--batch-size", "8", "--latent-dim", "8",
            "--summary-every-steps", "2", "--sample-every-steps", "2"]
    result = subprocess.run([RUN_TRAINING, "-d", images, "-c", "-p", str(port), "-j", "e2e", "-s", "4", "--", *tiny],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    job = home / "jobs" / "e2e"
    record = read_job(job)
    assert record["state"] == "SUCCEEDED" and record["step"] == 4 and record["model"] == "vaegan"
    assert json.loads((job / "data" / "manifest.json").read_text())["center_crop"] is True
    assert json.loads((job / "config.json").read_text())["image_size"] == 32
    assert checkpoint_step(job) == 4
    assert {"step_0000000.png", "step_0000002.png", "step_0000004.png"} <= set(os.listdir(job / "samples"))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(job / "logs"))
    assert f"TensorBoard: http://127.0.0.1:{port}" in result.stdout
    with pytest.raises(OSError):  # TensorBoard was stopped with the training
        wait_for_port(port, timeout=0.5)

    # Same job again: data up to date, resumes at step 4; Ctrl-C saves and cancels.
    log = tmp_path / "again.log"
    proc = subprocess.Popen([RUN_TRAINING, "-d", images, "-c", "-p", str(port), "-j", "e2e", "-s", "100000"],
                            cwd=tmp_path, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_until(lambda: (read_job(job) or {}).get("step", 0) >= 6, 300, proc, "resumed training")
    wait_for_port(port, timeout=120, proc=proc)  # TensorBoard serves on 127.0.0.1:PORT meanwhile
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 130, log.read_text()
    out = log.read_text()
    assert "is up to date" in out and "resumed from" in out and "at step 4" in out
    record = read_job(job)
    assert record["state"] == "CANCELLED" and checkpoint_step(job) == record["step"] >= 6
