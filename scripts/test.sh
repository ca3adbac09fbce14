#!/usr/bin/env bash
# Set up .venv/ (when missing or out of date), make sure Debian's chromium is there for the web studio's browser
# tests, and run the whole test suite; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
genart_ensure_chromium
exec python -m pytest "$@"
