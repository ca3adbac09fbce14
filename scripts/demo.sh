#!/usr/bin/env bash
# genart's main job, end to end, on the bundled sample images (INTERFACE.md section 0):
#
#   ./scripts/demo.sh [--full]            # from any directory; 4-7 minutes on 2 CPU cores
#
#  1. set-up      scripts/setup_env.sh: creates/refreshes .venv/ (pinned requirements.lock + `pip install -e .`)
#  2. train       ./run_training.sh -d examples/images -j demo_<YYYYmmdd_HHMMSS> -s STEPS -- <a small VAE-GAN>
#                 (it preprocesses into the job's data/, trains, writes samples/ and exports the SavedModel)
#  3. deploy      ./create_model.sh -j <job> -n demo          -> $GENART_HOME/models/demo/<next version>/
#  4. serve       python -m serving.server on two free 127.0.0.1 ports (REST + gRPC), serving the demo's models
#                 only (its own models.config in the run dir), until /readyz says they are loaded
#  5. predict     python -m serving.predict with gcloud JSON-instances files: embeddings -> images,
#                 images -> embeddings, and those embeddings back to images (the round trip)
#  6. batch       python -m serving.batch_predict over both instance files (Apache Beam, DirectRunner)
#  7. stop the server, print a report: job, steps, images/s, sample grid, the final evaluation's kid_digits
#     (--eval-every-steps at the last step, 200 samples per split), model version, predicted images
#  --full also trains a small CycleGAN on examples/unpaired (model `demo_cyclegan`) and predicts with its
#  `a_to_b` and `b_to_a` signatures, and SPADE on examples/landscapes (`demo_spade`, scripts/demo_spade.sh).
#
# Re-running: every run is a NEW job (demo_<timestamp>, also demo_cyclegan_<timestamp> with --full), deployed as
# the next version of model `demo` (`demo_cyclegan`); its instance files, predictions, batch output and logs go to
# a fresh $GENART_HOME/demo/<job>/. Nothing earlier is overwritten or deleted; remove $GENART_HOME/jobs/demo_*,
# $GENART_HOME/models/demo* and $GENART_HOME/demo/ to reclaim the space (then rerun create_model.sh for any
# model you keep, to rewrite models.config). Models you deployed yourself are never loaded or touched.
#
# Environment:
#   GENART_HOME                   where jobs/, models/ and demo/ go (default <repo>/workspace)
#   GENART_DEMO_STEPS             VAE-GAN training steps (default 4000; e.g. 4 for a smoke test)
#   GENART_DEMO_CYCLEGAN_STEPS    CycleGAN training steps with --full (default 500)
#
# Every process it starts (the trainer and run_training.sh's TensorBoard, the server, predict and batch jobs) is
# stopped on exit, on error, on Ctrl-C and on SIGTERM; an interrupted training job saves a checkpoint and is
# marked CANCELLED. A failing step stops the demo with a message naming the step and the tail of its log.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
FULL=0
for arg in "$@"; do
  case "$arg" in
    --full) FULL=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument '$arg' (usage: scripts/demo.sh [--full])" >&2; exit 2 ;;
  esac
done

# ---------------------------------------------------------------- bookkeeping: steps, logs, children, clean-up

STEP="set-up"          # the step running now: named in every failure message
STEP_LOG=""            # its log file, shown (tail) when it fails
CHILD=""               # the foreground child (run in the background so that signals reach us at once)
SERVER_PID=""
SERVER_STATE="not started"
FILTER_PID=""          # the filter of run_shown's output
STARTED_AT=$SECONDS
# TensorFlow's start-up chatter, kept in the logs but not shown on the terminal.
NOISE='^(WARNING: All log messages before absl::InitializeLog|[IWE][0-9]{4} [0-9:.]+ +[0-9]+ (cudart_stub|cuda_platform|cpu_feature_guard|cuda_executor|cuda_dnn|cuda_fft|cuda_blas)\.cc:|To enable the following instructions)'

say() { printf '\n== %s\n' "$*"; }

descendants() {  # every live descendant of process $1 (children first)
  local child
  for child in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$child"
    descendants "$child"
  done
}

stop_pid() {  # stop_pid PID GRACE_SECONDS: SIGTERM, wait up to GRACE, then SIGKILL
  local pid=$1 grace=$2 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "demo.sh: process $pid did not stop within ${grace}s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  stop_pid "$SERVER_PID" 20
  SERVER_PID=""
  SERVER_STATE="stopped"
}

restore_output() {  # fds 1 and 2 back to the terminal (a trap may fire inside `run CMD > FIFO`)
  exec 1>&3 2>&4
}

cleanup() {
  local rc=$? pid tree i
  trap - EXIT ERR
  trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short (every wait in it is bounded)
  set +e
  restore_output
  tree="$(descendants $$)"  # everything we started, grandchildren included (TensorBoard, the trainer, ...)
  # A training child gets time to save its checkpoint (run_training.sh forwards SIGTERM to the trainer).
  [[ -n "$CHILD" ]] && stop_pid "$CHILD" 90
  stop_server
  if [[ -n "$FILTER_PID" ]]; then  # let the output filter print the last lines
    for ((i = 0; i < 50; i++)); do kill -0 "$FILTER_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  for pid in $tree; do  # whatever outlived its parent
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  sleep 0.2
  for pid in $tree; do
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  wait 2>/dev/null
  rm -f "${FIFO:-}"
  exit "$rc"
}

on_error() {
  local rc=$?
  [[ "$BASHPID" == "$$" ]] || exit "$rc"  # in a $(...) subshell: the main shell reports it
  trap - ERR
  restore_output
  echo >&2
  echo "demo.sh: FAILED at step '$STEP' (exit status $rc)" >&2
  if [[ -n "$STEP_LOG" && -s "$STEP_LOG" ]]; then
    echo "---- last lines of $STEP_LOG:" >&2
    tail -n 25 "$STEP_LOG" >&2
    echo "----" >&2
  fi
  exit "$rc"
}

on_signal() {
  trap '' INT TERM
  restore_output
  echo >&2
  echo "demo.sh: interrupted by SIG$1 during step '$STEP': stopping the processes it started ..." >&2
  [[ "$1" == INT ]] && exit 130 || exit 143
}

exec 3>&1 4>&2  # the terminal, for messages from traps
trap cleanup EXIT
trap on_error ERR
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

fail() { echo "demo.sh: FAILED at step '$STEP': $*" >&2; exit 1; }

run() {  # run CMD...: in the background, waited for, so that a signal interrupts the wait (not deferred)
  local rc=0
  "$@" 3>&- 4>&- &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}

run_shown() {  # run_shown LOG CMD...: run CMD, its output to LOG and to the terminal (less TensorFlow's noise)
  local log=$1 rc=0
  shift
  FIFO="$RUN_DIR/.output.fifo"
  rm -f "$FIFO"
  mkfifo "$FIFO"
  # SIGINT ignored: on Ctrl-C the filter must outlive the trainer, which is still writing its last lines.
  { trap '' INT; tee -a "$log" | grep --line-buffered -v -E "$NOISE" || true; } < "$FIFO" 3>&- 4>&- &
  FILTER_PID=$!
  run "$@" > "$FIFO" 2>&1 || rc=$?
  wait "$FILTER_PID" 2>/dev/null || true
  FILTER_PID=""
  rm -f "$FIFO"
  return "$rc"
}

latest_file() { { ls -1 "$@" 2>/dev/null || true; } | sort | tail -n 1; }

# ---------------------------------------------------------------- 1. set-up

say "set-up: .venv/ (created or refreshed only when missing or out of date)"
# Sourced as it is (set -E off: the ERR trap must not fire inside its $(...) helpers, whose failures it tolerates);
# a failing command of its own still stops the demo at this step.
set +E
# shellcheck source=setup_env.sh
source "$REPO/scripts/setup_env.sh"   # puts .venv/bin first on PATH, exports GENART_HOME
set -Eeuo pipefail
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, whatever the cwd
mkdir -p "$GENART_HOME"
GENART_HOME="$(cd "$GENART_HOME" && pwd)"
export GENART_HOME
PY="$REPO/.venv/bin/python"
HELPERS="$REPO/scripts/demo_helpers.py"

STEPS="${GENART_DEMO_STEPS:-4000}"
CYCLE_STEPS="${GENART_DEMO_CYCLEGAN_STEPS:-500}"
[[ "$STEPS" =~ ^[1-9][0-9]*$ ]] || fail "GENART_DEMO_STEPS must be a positive integer, got '$STEPS'"
[[ "$CYCLE_STEPS" =~ ^[1-9][0-9]*$ ]] || fail "GENART_DEMO_CYCLEGAN_STEPS must be a positive integer, got '$CYCLE_STEPS'"

STAMP="$(date +%Y%m%d_%H%M%S)"
JOB="demo_$STAMP"
n=2
while [[ -e "$GENART_HOME/jobs/$JOB" || -e "$GENART_HOME/demo/$JOB" ]]; do JOB="demo_${STAMP}_$n"; n=$((n + 1)); done
CYCLE_JOB="demo_cyclegan_${JOB#demo_}"
MODEL=demo
CYCLE_MODEL=demo_cyclegan
RUN_DIR="$GENART_HOME/demo/$JOB"
LOGS="$RUN_DIR/logs"
mkdir -p "$LOGS" "$RUN_DIR/instances" "$RUN_DIR/predictions"
echo "python: $PY    GENART_HOME: $GENART_HOME    demo outputs: $RUN_DIR"

free_ports() { "$PY" "$HELPERS" free-ports "$1"; }  # free_ports N: N distinct free TCP ports on 127.0.0.1
# shellcheck source=demo_spade.sh
source "$REPO/scripts/demo_spade.sh"  # --full's SPADE steps: spade_train, spade_predict, spade_report

# A small, fast VAE-GAN: 32 px, 16 base filters, batch 16: 12-25 steps/s on 2 CPU cores, so the default 4000 steps
# take 3-5 minutes and the whole demo 4-7 (measured). Reconstructions are recognisable by then, samples colourful.
every() { local n=$(($1 / $2)); echo $((n > 0 ? n : 1)); }
# The one evaluation, at the last step, takes a few seconds (200 samples per split).
VAEGAN_FLAGS=(--image-size 32 --base-filters 16 --batch-size 16
              --summary-every-steps "$(every "$STEPS" 10)" --sample-every-steps "$(every "$STEPS" 5)"
              --checkpoint-every-steps "$(every "$STEPS" 2)" --eval-every-steps "$STEPS" --eval-num-samples 200)
CYCLEGAN_FLAGS=(--image-size 32 --base-filters 8 --n-blocks 2 --batch-size 4 --pool-size 10
                --summary-every-steps "$(every "$CYCLE_STEPS" 5)" --sample-every-steps "$(every "$CYCLE_STEPS" 2)"
                --checkpoint-every-steps "$CYCLE_STEPS")

train() {  # train JOB DATA_DIR STEPS LOG [MORE run_training.sh ARGUMENTS...]: run_training.sh, then check the job
  local job=$1 data=$2 steps=$3 log=$4
  shift 4
  run_shown "$log" "$REPO/run_training.sh" -d "$data" -j "$job" -s "$steps" "$@"
  local state
  state="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["state"])' "$GENART_HOME/jobs/$job/job.json")"
  [[ "$state" == SUCCEEDED ]] || fail "job $job ended in state $state (see $GENART_HOME/jobs/$job/job.json)"
  [[ -f "$GENART_HOME/jobs/$job/export/saved_model.pb" ]] || fail "job $job has no export/saved_model.pb"
}

deploy() {  # deploy JOB MODEL LOG -> sets DEPLOYED_VERSION, DEPLOYED_DIR
  local job=$1 model=$2 log=$3 line
  run "$REPO/create_model.sh" -j "$job" -n "$model" > "$log" 2>&1
  line="$(grep -m1 '^Deployed job ' "$log" || true)"
  [[ "$line" =~ version\ ([0-9]+):\ (.*)$ ]] || fail "cannot find the deployed version in $log"
  DEPLOYED_VERSION="${BASH_REMATCH[1]}"
  DEPLOYED_DIR="${BASH_REMATCH[2]}"
  [[ -f "$DEPLOYED_DIR/saved_model.pb" ]] || fail "$DEPLOYED_DIR/saved_model.pb is missing"
  echo "$line"
}

# ---------------------------------------------------------------- 2. train the VAE-GAN

STEP="train (VAE-GAN)"
STEP_LOG="$LOGS/train.log"
JOB_DIR="$GENART_HOME/jobs/$JOB"
TB_PORT="$(free_ports 1)"  # TensorBoard's; the default 6006 may be taken
say "train: ./run_training.sh -d examples/images -j $JOB -s $STEPS -p $TB_PORT -- ${VAEGAN_FLAGS[*]}"
train "$JOB" "$REPO/examples/images" "$STEPS" "$STEP_LOG" -p "$TB_PORT" -- "${VAEGAN_FLAGS[@]}"
SAMPLE_GRID="$(latest_file "$JOB_DIR"/samples/step_*.png)"
[[ -n "$SAMPLE_GRID" ]] || fail "no sample grid in $JOB_DIR/samples/"

# ---------------------------------------------------------------- 3. deploy

STEP="deploy (create_model.sh)"
STEP_LOG="$LOGS/create_model.log"
say "deploy: ./create_model.sh -j $JOB -n $MODEL"
deploy "$JOB" "$MODEL" "$STEP_LOG"
VERSION=$DEPLOYED_VERSION
VERSION_DIR=$DEPLOYED_DIR

if [[ $FULL == 1 ]]; then
  STEP="train (CycleGAN, --full)"
  STEP_LOG="$LOGS/train_cyclegan.log"
  CYCLE_JOB_DIR="$GENART_HOME/jobs/$CYCLE_JOB"
  TB_PORT="$(free_ports 1)"
  say "train: ./run_training.sh -d examples/unpaired -m cyclegan -j $CYCLE_JOB -s $CYCLE_STEPS -p $TB_PORT -- ${CYCLEGAN_FLAGS[*]}"
  train "$CYCLE_JOB" "$REPO/examples/unpaired" "$CYCLE_STEPS" "$STEP_LOG" -m cyclegan -p "$TB_PORT" -- "${CYCLEGAN_FLAGS[@]}"
  CYCLE_SAMPLE_GRID="$(latest_file "$CYCLE_JOB_DIR"/samples/step_*.png)"
  STEP="deploy (create_model.sh, CycleGAN)"
  STEP_LOG="$LOGS/create_model_cyclegan.log"
  say "deploy: ./create_model.sh -j $CYCLE_JOB -n $CYCLE_MODEL"
  deploy "$CYCLE_JOB" "$CYCLE_MODEL" "$STEP_LOG"
  CYCLE_VERSION=$DEPLOYED_VERSION
  CYCLE_VERSION_DIR=$DEPLOYED_DIR
  spade_train
fi

# ---------------------------------------------------------------- 4. serve

STEP="start the server"
STEP_LOG="$LOGS/server.log"
SERVER_CONFIG="$RUN_DIR/models.config"
"$PY" "$HELPERS" models-config "$SERVER_CONFIG" "$MODEL" $([[ $FULL == 1 ]] && echo "$CYCLE_MODEL $SPADE_MODEL")
read -r REST_PORT GRPC_PORT < <(free_ports 2)
SERVER="http://127.0.0.1:$REST_PORT"
say "serve: python -m serving.server --model-config-file models.config --rest-api-port $REST_PORT --port $GRPC_PORT"
"$PY" -m serving.server --model-config-file "$SERVER_CONFIG" --rest-api-port "$REST_PORT" --port "$GRPC_PORT" \
  > "$STEP_LOG" 2>&1 3>&- 4>&- &
SERVER_PID=$!
SERVER_STATE="running"
run "$PY" "$HELPERS" wait-ready "$SERVER" "$SERVER_PID"

# ---------------------------------------------------------------- 5. predict, both directions

STEP="write the JSON-instances files"
STEP_LOG=""
INSTANCES="$RUN_DIR/instances"
PREDICTIONS="$RUN_DIR/predictions"
# gcloud's JSON-instances format, one instance per line:
#   {"embeddings": [...latent_dim floats...], "key": "0"}     {"image_bytes": {"b64": "..."}, "key": "0"}
"$PY" "$HELPERS" instances "$INSTANCES" "$JOB_DIR" "$REPO/examples" "$FULL"

predict() {  # predict INSTANCES OUT_DIR ARGS...: python -m serving.predict through the server, shown as run
  local instances=$1 out=$2 shown
  shift 2
  local args=(--server "$SERVER" "$@" --json-instances "$instances" --output-dir "$out")
  shown="python -m serving.predict ${args[*]}"
  say "predict: ${shown//"$RUN_DIR/"/}"
  run "$PY" -m serving.predict "${args[@]}" > "$out.json" 2>> "$LOGS/predict.log"
  echo "   $(find "$out" -type f | wc -l) files in $out/ (the response: $out.json)"
}

STEP="predict embeddings -> images"
STEP_LOG="$LOGS/predict.log"
predict "$INSTANCES/embeddings.json" "$PREDICTIONS/images_from_embeddings" --model "$MODEL" --version "$VERSION"

STEP="predict images -> embeddings"
predict "$INSTANCES/images.json" "$PREDICTIONS/embeddings_from_images" --model "$MODEL" --version "$VERSION"

STEP="predict the round trip (predicted embeddings -> images)"
# Every prediction is a valid instance for the opposite signature: the embeddings predicted from the example
# images, one per line, are the next request; its images are the model's reconstructions of those examples.
"$PY" "$HELPERS" round-trip "$PREDICTIONS/embeddings_from_images.json" "$INSTANCES/round_trip.json"
predict "$INSTANCES/round_trip.json" "$PREDICTIONS/reconstructions" --model "$MODEL" --version "$VERSION"

if [[ $FULL == 1 ]]; then
  STEP="predict CycleGAN a_to_b"
  predict "$INSTANCES/images_a.json" "$PREDICTIONS/a_to_b" --model "$CYCLE_MODEL" --signature-name a_to_b
  STEP="predict CycleGAN b_to_a"
  predict "$INSTANCES/images_b.json" "$PREDICTIONS/b_to_a" --model "$CYCLE_MODEL" --signature-name b_to_a
  spade_predict
fi

# ---------------------------------------------------------------- 6. batch prediction

STEP="batch prediction"
STEP_LOG="$LOGS/batch_predict.log"
BATCH_OUT="$RUN_DIR/batch"
say "batch: python -m serving.batch_predict --model $MODEL --version $VERSION --input-paths instances/embeddings.json,instances/images.json --output-path batch"
run "$PY" -m serving.batch_predict --model "$MODEL" --version "$VERSION" \
  --input-paths "$INSTANCES/embeddings.json,$INSTANCES/images.json" --output-path "$BATCH_OUT" \
  > "$STEP_LOG" 2>&1
grep -E '^batch_predict: [0-9,]+ instances read' "$STEP_LOG" | sed 's/^/   /' || true
count_lines() { cat "$@" 2>/dev/null | grep -c . || true; }
BATCH_RESULTS="$(count_lines "$BATCH_OUT"/prediction.results-*)"
BATCH_ERRORS="$(count_lines "$BATCH_OUT"/prediction.errors_stats-*)"
[[ "$BATCH_RESULTS" -gt 0 ]] || fail "no results in $BATCH_OUT/prediction.results-*"

# ---------------------------------------------------------------- 7. stop the server, report

STEP="stop the server"
STEP_LOG="$LOGS/server.log"
stop_server

STEP="report"
STEP_LOG=""
SPEED="$("$PY" "$HELPERS" training-speed "$JOB_DIR" "$LOGS/train.log" 2>> "$LOGS/report.log")"
QUALITY="$("$PY" "$HELPERS" quality "$JOB_DIR" 2>> "$LOGS/report.log" || echo "no evaluation (see $LOGS/report.log)")"
ELAPSED=$((SECONDS - STARTED_AT))
pngs() { find "$1" -name '*.png' | wc -l; }
REPORT="$RUN_DIR/report.txt"
{
  echo "genart demo: finished in $((ELAPSED / 60))m$((ELAPSED % 60))s"
  echo "  job:          $JOB (vaegan, $STEPS steps, 32 px)  $JOB_DIR"
  echo "  training:     $SPEED"
  echo "  sample grid:  $SAMPLE_GRID"
  echo "  quality:      $QUALITY"
  echo "  model:        $MODEL version $VERSION  $VERSION_DIR"
  echo "  server:       $SERVER (gRPC 127.0.0.1:$GRPC_PORT), $SERVER_STATE"
  echo "  predictions:  $(pngs "$PREDICTIONS/images_from_embeddings") images from embeddings  $PREDICTIONS/images_from_embeddings/"
  echo "                $(find "$PREDICTIONS/embeddings_from_images" -name '*.json' | wc -l) embeddings from images  $PREDICTIONS/embeddings_from_images/"
  echo "                $(pngs "$PREDICTIONS/reconstructions") reconstructions (image -> embedding -> image)  $PREDICTIONS/reconstructions/"
  if [[ $FULL == 1 ]]; then
    echo "  cyclegan:     $CYCLE_JOB ($CYCLE_STEPS steps), sample grid $CYCLE_SAMPLE_GRID"
    echo "                model $CYCLE_MODEL version $CYCLE_VERSION  $CYCLE_VERSION_DIR"
    echo "                $(pngs "$PREDICTIONS/a_to_b") a_to_b images  $PREDICTIONS/a_to_b/"
    echo "                $(pngs "$PREDICTIONS/b_to_a") b_to_a images  $PREDICTIONS/b_to_a/"
    spade_report
  fi
  echo "  batch:        $BATCH_RESULTS predictions, $BATCH_ERRORS errors  $BATCH_OUT/"
  echo "  logs:         $LOGS/   (this report: $REPORT)"
  echo "  (paths in the commands above are relative to $RUN_DIR)"
  echo "Serve every deployed model again: $PY -m serving.server --model-config-file $GENART_HOME/models/models.config"
} > "$REPORT"
echo
cat "$REPORT"
