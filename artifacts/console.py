"""What a genart command prints first: its own words, not TensorFlow's start-up noise.

TensorFlow's C++ side logs through absl before absl is initialised, which no environment variable silences
(`WARNING: All log messages before absl::InitializeLog() ...`, `cudart_stub.cc] Could not find cuda drivers`, the
oneDNN and CPU-feature notices). `import_tensorflow()` imports TensorFlow and initialises its devices with file
descriptor 2 sent to a temp file, then replays whatever was not such a notice. `--verbose` or `GENART_VERBOSE=1`
shows everything. Every entry point calls it before anything imports TensorFlow.
"""
from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import sys
import tempfile

VERBOSE_ENV = "GENART_VERBOSE"
VERBOSE_FLAG = "--verbose"
VERBOSE_HELP = "show TensorFlow's own start-up and C++ log lines (also: GENART_VERBOSE=1)"

# absl's C++ line prefix: severity, date, time, thread, file:line]
_ABSL_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^ \]]+:\d+\] ")
_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"),
)
_NOISY_SEVERITIES = "IW"  # absl INFO/WARNING lines; ERROR/FATAL lines are replayed unless known noise below
_KNOWN_ERRORS = (re.compile(r"failed call to cuInit"),)


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (plus a closest-flag suggestion), not the usage dump."""

    def error(self, message: str):
        unknown = re.findall(r"(--[\w-]+)", message) if "unrecognized arguments" in message else []
        known = [flag for action in self._actions for flag in action.option_strings]
        close = [match for flag in unknown for match in difflib.get_close_matches(flag, known, n=1)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        self.exit(2, f"{self.prog}: error: {message}{hint}; see {self.prog} --help\n")


def usage_error(problem: object, status: int = 2) -> int:
    """Say what is wrong in one `error:` line on stderr; return the exit status (2: the user's input)."""
    print(f"error: {problem}", file=sys.stderr)
    return status


def run(action, *errors: type[Exception]) -> int:
    """A command's last act: `action()`, exit status 0; one of `errors` is the user's mistake: its line, status 2."""
    try:
        action()
    except errors as err:
        return usage_error(err)
    return 0


def verbose(argv: list[str] | None = None) -> bool:
    """True when the user asked for TensorFlow's own logging (`--verbose` in argv, or GENART_VERBOSE=1)."""
    if os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    return VERBOSE_FLAG in (sys.argv[1:] if argv is None else argv)


def is_noise(line: str) -> bool:
    """True for TensorFlow's start-up notices (never for genart's own messages or real errors)."""
    if any(pattern.search(line) for pattern in _NOISE):
        return True
    if _ABSL_LINE.match(line):
        return line[0] in _NOISY_SEVERITIES or any(pattern.search(line) for pattern in _KNOWN_ERRORS)
    return False


def set_verbose(argv: list[str] | None = None) -> bool:
    """Decide once for this process and its children (`GENART_VERBOSE` is inherited); return the decision."""
    chosen = verbose(argv)
    if chosen:
        os.environ[VERBOSE_ENV] = "1"
    return chosen


def import_tensorflow(verbose_logging: bool | None = None, *, list_devices: bool = True):
    """Import TensorFlow (and list its devices, which loads the GPU plugins) without its start-up noise.

    Returns the `tensorflow` module. Idempotent: later calls, and later `import tensorflow`, print nothing.
    `list_devices=False` only imports (for a fork server whose children must start TensorFlow's runtime fresh).
    """
    if verbose_logging is None:
        verbose_logging = verbose()
    if "tensorflow" in sys.modules or verbose_logging:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ logging once absl is initialised
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            if list_devices:
                tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        lines = captured.read().decode("utf-8", errors="replace").splitlines()
    for line in lines:
        if not is_noise(line):
            print(line, file=sys.stderr)
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return tf
