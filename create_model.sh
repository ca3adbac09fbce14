#!/usr/bin/env bash
# Deploy a training job's export as a model version, or list recent jobs (INTERFACE.md section 4).
#   ./create_model.sh -l
#   ./create_model.sh -j JOB_NAME [-n MODEL_NAME] [-v VERSION]
# Works from any directory; honours GENART_HOME (default: <repo>/workspace).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="$ROOT/.venv/bin/python"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"

usage() {
  echo "usage: $0 -l | -j JOB_NAME [-n MODEL_NAME] [-v VERSION]" >&2
  echo "  -l  list the 10 most recent jobs (NAME STATE MODEL STEP CREATED)" >&2
  echo "  -j  deploy the job's export/ to \$GENART_HOME/models/MODEL_NAME/VERSION/" >&2
  echo "  -n  model name (default: the job name)    -v  version (default: highest + 1, from 1)" >&2
  echo "Examples:" >&2
  echo "  ./create_model.sh -l" >&2
  echo "  ./create_model.sh -j faces -n portraits" >&2
}

args=()
while getopts ":lj:n:v:h-:" opt; do
  case "$opt" in
    l) args+=(--list) ;;
    j) args+=(--job "$OPTARG") ;;
    n) args+=(--model-name "$OPTARG") ;;
    v) args+=(--version "$OPTARG") ;;
    h) usage; exit 0 ;;
    -) [[ "$OPTARG" == help ]] && { usage; exit 0; }
       echo "$0: unknown option --$OPTARG" >&2; usage; exit 2 ;;
    :) echo "$0: -$OPTARG needs a value" >&2; usage; exit 2 ;;
    *) echo "$0: unknown option -$OPTARG" >&2; usage; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [[ $# -gt 0 ]]; then echo "$0: unexpected argument(s): $*" >&2; usage; exit 2; fi
if [[ ${#args[@]} -eq 0 ]]; then usage; exit 2; fi

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m serving.create_model "${args[@]}"
