"""Names users choose (job names, model names) and version numbers: one rule for the whole project.

It lives on the lowest floor (`artifacts`) because `preprocess`, `trainer` (job names) and `serving` (model
names, versions in URLs and paths) all validate with it. Two rules: names this project *creates* (jobs, and
models deployed by `create_model`) follow the strict job-name rule; names a server *serves* follow TF Serving's
(anything without '/' or ':', e.g. `resnet-50`), since such a name is only ever a dictionary key there. Every
pattern is a full match, so a trailing newline never slips through a `$`.
"""
from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
NAME_RULE = "a letter followed by up to 127 letters, digits or underscores"
SERVED_NAME_PATTERN = re.compile(r"[^/:]+")
SERVED_NAME_RULE = "one or more characters, none of them '/' or ':'"


def _validated(name: str, pattern: re.Pattern, rule: str, what: str) -> str:
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise ValueError(f"invalid {what} {name!r}: must be {rule}")
    return name


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a valid job/model name, else raise ValueError saying why."""
    return _validated(name, NAME_PATTERN, f"{NAME_RULE} (e.g. 'faces_v2')", what)


def validate_served_name(name: str, what: str = "model name") -> str:
    """Return `name` if a server may serve a model so named (TF Serving's rule), else raise ValueError."""
    return _validated(name, SERVED_NAME_PATTERN, SERVED_NAME_RULE, what)


def validate_version(version) -> int:
    """A model version: a positive integer (given as int or decimal string of ASCII digits)."""
    text = str(version)
    if not re.fullmatch(r"[0-9]{1,18}", text) or int(text) <= 0:
        raise ValueError(f"invalid version {version!r}: must be a positive integer")
    return int(text)
