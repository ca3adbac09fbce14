#!/usr/bin/env bash
# Train a model on a folder of images (INTERFACE.md sections 2 and 8):
#   ./run_training.sh -d DATA_DIR [-c] [-p PORT] [-j JOB_NAME] [-m vaegan|cyclegan|CONFIG.json] [-s MAX_STEPS]
#                     [-- TRAINER FLAGS...]
# Preprocesses DATA_DIR into $GENART_HOME/jobs/JOB_NAME/data/ (skipped when up to date), starts TensorBoard on
# 127.0.0.1:PORT in the background, and runs `python -m trainer.task` in the foreground. Re-running with the same
# -j resumes the job; Ctrl-C saves a checkpoint and marks the job CANCELLED. Works from any directory.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="$REPO/.venv/bin/python"
[[ -x "$PY" ]] || PY="$(command -v python3)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

usage() {
  cat >&2 <<'EOF'
usage: run_training.sh -d DATA_DIR [-c] [-p PORT] [-j JOB_NAME] [-m vaegan|cyclegan|CONFIG.json] [-s MAX_STEPS]
                       [-- TRAINER FLAGS...]
  -d  image folder (local or gs://), preprocessed data dir, .npy or .npz (required unless a -m config names
      data_path; -d wins)                         -c  center crop (default: random crops)
  -p  TensorBoard port (default 6006)             -j  job name (default <model>_<YYYYmmdd_HHMMSS>)
  -m  model or JSON config (default vaegan)       -s  max steps
Trainer flags: python -m trainer.task --help. Jobs live in $GENART_HOME/jobs/ (default <repo>/workspace).
GENART_VERBOSE=1 also shows TensorFlow's own start-up log lines.

Examples:
  ./run_training.sh -d examples/images -c -j faces -s 2000
  ./run_training.sh -d my_photos/ -m cyclegan -- --image-size 128
  ./run_training.sh -m examples/configs/dcgan_diffaug.json -s 5000
EOF
  exit "${1:-2}"
}

DATA_DIR="" CENTER_CROP="" PORT=6006 JOB_NAME="" MODEL="" MAX_STEPS=""
while getopts ":d:cp:j:m:s:h" opt; do
  case "$opt" in
    d) DATA_DIR="$OPTARG" ;;
    c) CENTER_CROP="--center-crop" ;;
    p) PORT="$OPTARG" ;;
    j) JOB_NAME="$OPTARG" ;;
    m) MODEL="$OPTARG" ;;
    s) MAX_STEPS="$OPTARG" ;;
    h) usage 0 ;;
    :) echo "error: -$OPTARG needs a value" >&2; usage ;;
    *) echo "error: unknown option -$OPTARG" >&2; usage ;;
  esac
done
shift $((OPTIND - 1))
[[ "${1:-}" == "--" ]] && shift
if [[ -z "$DATA_DIR" ]]; then  # a -m config may name its data_path (gan-toolkit's key)
  if [[ "$MODEL" == *.json ]]; then
    DATA_DIR="$("$PY" -m trainer.models data-path "$MODEL")" || exit 2
  else
    echo "error: -d DATA_DIR is required" >&2; usage
  fi
fi
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "error: -p needs a port number, got '$PORT'" >&2; exit 2; }

if [[ -z "$JOB_NAME" ]]; then  # <model>_<timestamp>; a JSON config's "model" field names the model
  MODEL_NAME="$("$PY" -m trainer.models model-of "${MODEL:-}")" || exit 2
  JOB_NAME="${MODEL_NAME}_$(date +%Y%m%d_%H%M%S)"
fi
"$PY" -m artifacts.jobs check-name "$JOB_NAME"

GENART_HOME="${GENART_HOME:-$REPO/workspace}"
JOB_DIR="$GENART_HOME/jobs/$JOB_NAME"
TRAINER_ARGS=(--data-dir "$JOB_DIR/data" --job-dir "$JOB_DIR")
[[ -n "$MODEL" ]] && TRAINER_ARGS+=(--model "$MODEL")
[[ -n "$MAX_STEPS" ]] && TRAINER_ARGS+=(--max-steps "$MAX_STEPS")
TRAINER_ARGS+=("$@")

"$PY" -m trainer.prepare --source "$DATA_DIR" $CENTER_CROP -- "${TRAINER_ARGS[@]}"

# Background jobs get their own process groups, so a Ctrl-C reaches only this script, which forwards it once.
set -m
TENSORBOARD_PID="" TRAINER_PID=""
cleanup() {
  [[ -n "$TENSORBOARD_PID" ]] && kill "$TENSORBOARD_PID" 2>/dev/null && wait "$TENSORBOARD_PID" 2>/dev/null
  return 0
}
trap cleanup EXIT
TENSORBOARD="$(dirname "$PY")/tensorboard"
[[ -x "$TENSORBOARD" ]] || TENSORBOARD="$(command -v tensorboard || true)"
if [[ -n "$TENSORBOARD" ]]; then
  mkdir -p "$JOB_DIR/logs"
  "$TENSORBOARD" --logdir "$JOB_DIR/logs" --host 127.0.0.1 --port "$PORT" >/dev/null 2>&1 &
  TENSORBOARD_PID=$!
  echo "TensorBoard: http://127.0.0.1:$PORT"
else
  echo "tensorboard not found: training without it"
fi

forward() { [[ -n "$TRAINER_PID" ]] && kill "-$1" "$TRAINER_PID" 2>/dev/null; return 0; }
trap 'forward INT' INT
trap 'forward TERM' TERM
"$PY" -m trainer.task "${TRAINER_ARGS[@]}" &
TRAINER_PID=$!
while kill -0 "$TRAINER_PID" 2>/dev/null; do
  wait "$TRAINER_PID" 2>/dev/null || true  # returns early when a forwarded signal interrupts it
done
STATUS=0
wait "$TRAINER_PID" 2>/dev/null || STATUS=$?
echo "job $JOB_NAME: $(sed -n 's/.*"state": "\([A-Z]*\)".*/\1/p' "$JOB_DIR/job.json" | head -1) ($JOB_DIR)"
exit "$STATUS"
