"""Names users choose (job names, model names) and version numbers: one rule for the whole project.

It lives on the lowest floor (`artifacts`) because `preprocess`, `trainer` (job names) and `serving` (model
names, versions in URLs and paths) all validate with it.
"""
from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
NAME_RULE = "a letter followed by up to 127 letters, digits or underscores"


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a valid job/model name, else raise ValueError saying why."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"invalid {what} {name!r}: must be {NAME_RULE} (e.g. 'faces_v2')")
    return name


def validate_version(version) -> int:
    """A model version: a positive integer (given as int or decimal string)."""
    text = str(version)
    if not text.isdigit() or int(text) <= 0 or len(text) > 18:
        raise ValueError(f"invalid version {version!r}: must be a positive integer")
    return int(text)
