#!/usr/bin/env bash
# The main job on the bundled sample images (INTERFACE.md section 0). Re-runnable: each step replaces its output.
# Today: preprocess examples/images -> $GENART_HOME/demo/data. Later steps (train, export, serve, predict) extend it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh

DEMO_DIR="$GENART_HOME/demo"
DATA_DIR="$DEMO_DIR/data"
mkdir -p "$DEMO_DIR"

echo "== preprocess: examples/images -> $DATA_DIR"
python -m preprocess --input-dir examples/images --output-dir "$DATA_DIR"
echo "   manifest: $DATA_DIR/manifest.json"
