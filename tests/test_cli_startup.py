"""Fast start-up: every command answers `--help` without importing TensorFlow or Beam (seconds each here)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO_ROOT

COMMANDS = ["preprocess", "trainer.task", "trainer.export", "trainer.evaluate", "serving.create_model", "serving.server",
            "serving.predict", "serving.batch_predict"]
PROBE = """
import runpy, sys
sys.argv = [{module!r}, "--help"]
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit as stop:
    assert stop.code in (0, None), stop.code
heavy = sorted(m for m in ("tensorflow", "apache_beam", "keras") if m in sys.modules)
assert not heavy, heavy
"""


@pytest.mark.parametrize("module", COMMANDS)
def test_help_answers_without_tensorflow(module):
    result = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


@pytest.mark.parametrize("script", ["create_model.sh", "run_training.sh"])
def test_shell_entry_points_answer_help(script):
    result = subprocess.run([f"{REPO_ROOT}/{script}", "-h"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "usage" in (result.stdout + result.stderr).lower()
