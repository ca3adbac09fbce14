#!/usr/bin/env bash
# Set up .venv/ (when missing or out of date) and run the whole test suite; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
exec python -m pytest "$@"
