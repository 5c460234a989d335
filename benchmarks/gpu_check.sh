#!/usr/bin/env bash
# stbench's GPU measurements in one bounded run (at most ~8 minutes on one GPU); see benchmarks/gpu_check.py.
#   bash benchmarks/gpu_check.sh            # on the GPU machine; writes results/benchmarks/*cuda*.csv
#   bash benchmarks/gpu_check.sh --dry      # the same pipeline on CPU at smoke sizes
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
exec timeout 480 python benchmarks/gpu_check.py "$@"
