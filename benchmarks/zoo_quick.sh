#!/usr/bin/env bash
# The zoo's Moving MNIST quick leaderboard under the one-budget protocol (issue 23): every model trains the
# quick preset's budget (samples=4000), ONE RUN AT A TIME on an otherwise idle machine (so the train-time and
# throughput columns measure the model, not the neighbours), the six seed models with two seeds. Resumable:
# completed records are skipped, an interrupted run continues (--resume); each completed cell is committed on
# its own, so a session that stops mid-grid loses at most the run in progress.
#
#   bash benchmarks/zoo_quick.sh              # all cells still missing, seed models first
#   COMMIT=0 bash benchmarks/zoo_quick.sh     # no git commits (a dry look at the grid)
#   stbench report --results results/zoo-mmnist-quick-cpu --format md,csv,html,site
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/zoo-mmnist-quick-cpu}
COMMIT=${COMMIT:-1}
. benchmarks/commit_records.sh
SEED_MODELS="tau predrnn simvp gsta convlstm predrnn_v2"
ZOO="convmixer convnext hornet mlpmixer moganet poolformer swin uniformer van vit mmvp predformer predformer_quad
     predrnnpp mim e3dlstm mau phydnet swinlstm"

cell() {  # model seeds
  local model=$1 seeds=$2
  # --no-weights: 25 models x a few MB of weights do not belong in the repository; re-run without it to keep them
  stbench run --models "$model" --seeds "$seeds" --dataset mmnist --preset quick --out "$OUT" --resume --no-weights
  if [ "$COMMIT" = 1 ]; then
    commit_records "zoo quick (samples=4000): $model seeds $seeds" "$OUT/records"
  fi
}

for m in $SEED_MODELS; do cell "$m" 0,1; done
for m in $ZOO; do cell "$m" 0; done
