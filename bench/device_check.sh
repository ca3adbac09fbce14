#!/usr/bin/env bash
# One prepared speed check for a GPU machine (issue 18), about 5 minutes, printing tables:
#   device info (nvidia-smi, TensorFlow's devices); VAE-GAN 64 px batch 64 and CycleGAN 256 px batch 1 train-step
#   img/s for float32 / mixed precision / mixed + XLA (bench/step_rates.py); the full loop on 1 vs 2 replicas
#   (MirroredStrategy) when there are 2 GPUs; serving throughput at 16 concurrent clients with batching off / on
#   (bench/serve_latency.py).
#     bench/device_check.sh              # on the GPU machine, from the repository root
#     bench/device_check.sh --cpu-smoke  # tiny everything, on a CPU: checks that the script runs (a minute or two)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=2
SMOKE=()
SERVE=(--concurrency 16 --seconds 8 --requests 200)
if [[ "${1:-}" == "--cpu-smoke" ]]; then
  SMOKE=(--cpu-smoke)
  SERVE=(--concurrency 16 --seconds 1 --requests 20 --tiny)
fi
status=0
echo "== device"
date -u
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv 2>/dev/null || echo "nvidia-smi: none"
"$PYTHON" -c "import tensorflow as tf; print('tensorflow', tf.__version__, 'devices:', \
[d.name for d in tf.config.list_logical_devices()])" 2>&1 | grep -v "^WARNING\|^I0000\|^E0000\|^To enable" || status=1
echo "== training step img/s (bench/step_rates.py)"
timeout 240 "$PYTHON" bench/step_rates.py "${SMOKE[@]}" 2> >(grep -iE "error|Traceback" >&2) || status=1
echo "== serving, 16 concurrent clients, batching off / on (bench/serve_latency.py)"
timeout 120 "$PYTHON" bench/serve_latency.py "${SERVE[@]}" 2> >(grep -iE "error|Traceback" >&2) || status=1
exit $status
