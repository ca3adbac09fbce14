#!/usr/bin/env bash
# Sourced by scripts/test.sh and scripts/demo.sh: make sure .venv/ exists and matches the pinned requirements,
# then put it first on PATH. Re-installs only when requirements*.txt / requirements.lock / setup.py change.
set -euo pipefail
GENART_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$GENART_ROOT/.venv"
STAMP="$VENV/.genart-requirements.sha256"

_genart_python() {
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
  echo "genart: no python3 found on PATH" >&2; exit 1
}

_genart_digest() {
  cat "$GENART_ROOT"/requirements.txt "$GENART_ROOT"/requirements-test.txt \
      "$GENART_ROOT"/requirements.lock "$GENART_ROOT"/setup.py 2>/dev/null | sha256sum | cut -d' ' -f1
}

# The web studio's browser tests drive Debian's chromium through Playwright (Playwright's own browser download
# needs the network). scripts/test.sh calls this: installs it with apt-get (as root, or with password-less sudo)
# when it is missing; without it the browser tests skip, and under CI=true they fail.
genart_ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then return 0; fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null 2>&1; then
    echo "genart: installing chromium with apt-get for the web studio's browser tests ..."
    if $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
       $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; then
      return 0
    fi
  fi
  echo "genart: chromium is missing and could not be installed (apt-get install -y chromium, as root);" \
       "the web studio's browser tests will skip (and fail under CI)" >&2
}

want="$(_genart_digest)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "genart: setting up $VENV (first run takes a few minutes) ..."
  [ -x "$VENV/bin/python" ] || "$(_genart_python)" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  # requirements.lock is the fully resolved, pinned set; the top-level files say why each package is there.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$GENART_ROOT/requirements.lock"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$GENART_ROOT"
  echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export GENART_HOME="${GENART_HOME:-$GENART_ROOT/workspace}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
