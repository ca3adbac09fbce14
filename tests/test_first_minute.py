"""The first minute at the terminal (issue 20): a mistake is one clear line, exit 2, nothing left behind, no
TensorFlow import, no TensorFlow log line; a normal run speaks first; every `--help` ends with real examples.

"No TensorFlow import" is checked with a hook, not a clock: the commands run with a `tensorflow` package first on
PYTHONPATH that records its import in a marker file and then fails.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

TF_LOG_LINE = re.compile(r"(^[IWEF]\d{4} \d\d:\d\d:\d+|absl::InitializeLog|cudart_stub|oneDNN|cpu_feature_guard"
                         r"|^WARNING:tensorflow|tensorflow/core)", re.MULTILINE)
MODULE_COMMANDS = ["preprocess", "trainer.task", "trainer.export", "serving.server", "serving.predict",
                   "serving.batch_predict", "serving.create_model"]


@pytest.fixture
def no_tensorflow(tmp_path):
    """(environment, marker path): importing tensorflow in a process with this environment writes the marker."""
    fake = tmp_path / "fake_tf" / "tensorflow"
    fake.mkdir(parents=True)
    marker = tmp_path / "tensorflow-was-imported"
    (fake / "__init__.py").write_text(
        f"open({str(marker)!r}, 'a').write('imported\\n')\nraise ImportError('test hook: TensorFlow imported')\n")
    env = dict(os.environ, PYTHONPATH=f"{fake.parent}{os.pathsep}{REPO_ROOT}", GENART_HOME=str(tmp_path / "home"))
    env.pop("GENART_VERBOSE", None)
    return env, marker


def run(command: list[str], env: dict, cwd: str = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def listed_jobs(env: dict) -> str:
    return run([f"{REPO_ROOT}/create_model.sh", "-l"], env).stdout


MISTAKES = {
    "run_training.sh missing dir": [f"{REPO_ROOT}/run_training.sh", "-d", "/nonexistent/images"],
    "run_training.sh bad job name": [f"{REPO_ROOT}/run_training.sh", "-d", "examples/images", "-j", "9 lives"],
    "run_training.sh missing config": [f"{REPO_ROOT}/run_training.sh", "-d", "examples/images", "-m", "nope.json"],
    "run_training.sh unknown model": [f"{REPO_ROOT}/run_training.sh", "-d", "examples/images", "-m", "vaegann"],
    "run_training.sh bad trainer flag": [f"{REPO_ROOT}/run_training.sh", "-d", "examples/images", "--",
                                         "--batch-sise", "4"],
    "preprocess missing dir": python("preprocess", "--input-dir", "/nonexistent/images", "--output-dir", "{tmp}/o"),
    "preprocess unknown flag": python("preprocess", "--input-dir", "examples/images", "--output-dir", "{tmp}/o",
                                      "--imagesize", "32"),
    "trainer.task missing data": python("trainer.task", "--data-dir", "/nonexistent/data", "--job-dir",
                                        "{tmp}/home/jobs/j1"),
    "trainer.task bad job name": python("trainer.task", "--data-dir", "examples/images", "--job-dir",
                                        "{tmp}/home/jobs/bad-name"),
    "trainer.export missing job": python("trainer.export", "--job-dir", "/nonexistent/job"),
    "serving.server missing config": python("serving.server", "--model-config-file", "/nonexistent/models.config"),
    "serving.server missing base path": python("serving.server", "--model-name", "m", "--model-base-path",
                                               "/nonexistent/m"),
    "serving.predict missing instances": python("serving.predict", "--model", "m", "--json-instances",
                                                "/nonexistent/x.json", "--model-dir", "/nonexistent/export"),
    "serving.predict missing model dir": python("serving.predict", "--model", "m", "--json-instances",
                                                "examples/README.md", "--model-dir", "/nonexistent/export"),
    "serving.batch_predict no inputs": python("serving.batch_predict", "--input-paths", "/nonexistent/*.json",
                                              "--output-path", "{tmp}/out", "--model-dir", "/nonexistent/export"),
    "create_model.sh bad name": [f"{REPO_ROOT}/create_model.sh", "-j", "bad name"],
    "create_model.sh unknown job": [f"{REPO_ROOT}/create_model.sh", "-j", "no_such_job"],
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_a_mistake_is_one_clear_line_and_leaves_nothing(case, no_tensorflow, tmp_path):
    env, marker = no_tensorflow
    before = listed_jobs(env)
    command = [part.replace("{tmp}", str(tmp_path)) for part in MISTAKES[case]]
    result = run(command, env)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert not marker.exists(), f"{case}: TensorFlow was imported\n{result.stderr}"
    assert "Traceback" not in result.stderr and not TF_LOG_LINE.search(result.stderr), result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors, result.stderr
    assert listed_jobs(env) == before, "a job record was left behind"
    assert not os.path.exists(tmp_path / "home" / "jobs" / "j1")


@pytest.mark.parametrize("module", MODULE_COMMANDS)
def test_help_ends_with_real_examples(module, no_tensorflow):
    env, marker = no_tensorflow
    result = run(python(module, "--help"), env)
    assert result.returncode == 0 and not marker.exists(), result.stderr
    tail = result.stdout.strip().splitlines()[-6:]
    assert any(line.strip().lower().startswith("example") for line in result.stdout.splitlines()), result.stdout
    assert any(module.split(".")[-1] in line or "create_model.sh" in line for line in tail), tail


@pytest.mark.parametrize("script", ["run_training.sh", "create_model.sh"])
def test_shell_help_ends_with_real_examples(script, no_tensorflow):
    env, _ = no_tensorflow
    result = run([f"{REPO_ROOT}/{script}", "-h"], env)
    text = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 0 and any(line.strip().lower().startswith("example") for line in text), text
    assert any(f"./{script}" in line for line in text[-4:]), text


def test_a_normal_run_speaks_first_without_tensorflow_noise(tmp_path):
    """`python -m preprocess` imports TensorFlow: its first line is genart's own, and no TF log line appears."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("GENART_VERBOSE", None)
    images = tmp_path / "images"
    images.mkdir()
    examples = os.path.join(REPO_ROOT, "examples", "images")
    found = sorted(os.path.join(root, name) for root, _, names in os.walk(examples) for name in names
                   if name.endswith(".png"))
    for index, path in enumerate(found[:6]):
        shutil.copyfile(path, images / f"{index}.png")
    result = run(python("preprocess", "--input-dir", str(images), "--output-dir", str(tmp_path / "out"),
                        "--image-size", "16", "--workers", "1"), env)
    assert result.returncode == 0, result.stderr
    assert not TF_LOG_LINE.search(result.stderr + result.stdout), result.stderr
    verbose = run(python("preprocess", "--input-dir", str(images), "--output-dir", str(tmp_path / "out2"),
                         "--image-size", "16", "--workers", "1", "--verbose"), env)
    assert verbose.returncode == 0 and TF_LOG_LINE.search(verbose.stderr), verbose.stderr
