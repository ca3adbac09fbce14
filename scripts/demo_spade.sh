# The SPADE steps of `scripts/demo.sh --full` (sourced by it; uses its train, deploy, predict, say and pngs):
#   spade_train    ./run_training.sh -d examples/landscapes -m spade (image + label map pairs), then create_model.sh
#   spade_predict  python -m serving.predict with `label_map` instances (the first landscape label maps)
#   spade_report   the report's lines, and how to draw with the model in the studio's Draw tab
# Environment: GENART_DEMO_SPADE_STEPS (default 1500: ~2-3 minutes on 2 CPU cores at 32 px).

SPADE_MODEL=demo_spade

spade_train() {
  SPADE_STEPS="${GENART_DEMO_SPADE_STEPS:-1500}"
  [[ "$SPADE_STEPS" =~ ^[1-9][0-9]*$ ]] || fail "GENART_DEMO_SPADE_STEPS must be a positive integer, got '$SPADE_STEPS'"
  SPADE_JOB="demo_spade_${JOB#demo_}"
  local flags=(--image-size 32 --base-filters 16 --spade-filters 32 --batch-size 8 --eval-every-steps 0
               --summary-every-steps "$(every "$SPADE_STEPS" 5)" --sample-every-steps "$(every "$SPADE_STEPS" 3)"
               --checkpoint-every-steps "$SPADE_STEPS")
  STEP="train (SPADE, --full)"
  STEP_LOG="$LOGS/train_spade.log"
  TB_PORT="$(free_ports 1)"
  say "train: ./run_training.sh -d examples/landscapes -m spade -j $SPADE_JOB -s $SPADE_STEPS -p $TB_PORT -- ${flags[*]}"
  train "$SPADE_JOB" "$REPO/examples/landscapes" "$SPADE_STEPS" "$STEP_LOG" -m spade -p "$TB_PORT" -- "${flags[@]}"
  SPADE_SAMPLE_GRID="$(latest_file "$GENART_HOME/jobs/$SPADE_JOB"/samples/step_*.png)"
  STEP="deploy (create_model.sh, SPADE)"
  STEP_LOG="$LOGS/create_model_spade.log"
  say "deploy: ./create_model.sh -j $SPADE_JOB -n $SPADE_MODEL"
  deploy "$SPADE_JOB" "$SPADE_MODEL" "$STEP_LOG"
  SPADE_VERSION=$DEPLOYED_VERSION
  SPADE_VERSION_DIR=$DEPLOYED_DIR
}

spade_predict() {
  STEP="predict SPADE label_map"
  "$PY" "$HELPERS" label-maps "$INSTANCES/label_maps.json" "$REPO/examples/landscapes/labels" 4
  predict "$INSTANCES/label_maps.json" "$PREDICTIONS/label_map" --model "$SPADE_MODEL"
}

spade_report() {
  echo "  spade:        $SPADE_JOB ($SPADE_STEPS steps), sample grid (labels, fake, real) $SPADE_SAMPLE_GRID"
  echo "                model $SPADE_MODEL version $SPADE_VERSION  $SPADE_VERSION_DIR"
  echo "                $(pngs "$PREDICTIONS/label_map") pictures from label maps  $PREDICTIONS/label_map/"
  echo "  draw:         $PY -m serving.server --model-config-file $GENART_HOME/models/models.config, then open"
  echo "                http://127.0.0.1:8501/#draw, pick $SPADE_MODEL, paint sky, mountain, water... and Generate"
}
