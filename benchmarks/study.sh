#!/usr/bin/env bash
# The CPU compute study of issue 26 (docs/protocol.md, "Compute study"): recurrent vs parallel at equal training
# compute, and beyond the trained horizon. Exact commands; RESUMABLE: run the script again after an interruption
# (completed runs and evaluations are skipped, interrupted runs continue from their checkpoints with --resume).
#
#   bash benchmarks/study.sh                 # everything, in order (about 1-1.5 days of 2 CPU cores, see below)
#   bash benchmarks/study.sh mmnist          # one part: mmnist | ns2d | horizon | report
#   THREADS=2 OUT=results bash benchmarks/study.sh
#
# Sizes: the quick preset (the zoo's quick sizes, docs/protocol.md "Quick presets of the zoo"), three budgets
# spanning 10x in training sequences seen, two seeds:
#   mmnist: simvp gsta tau convlstm predrnn predrnn_v2 + mau mim mmvp predformer, samples = 2,000 / 6,000 / 20,000
#           (1 / 3 / 10 epochs of the quick preset's 2,000 generated sequences; the preset's own budget is 4,000)
#   ns2d:   the six seed models, samples = 2,200 / 7,000 / 22,000 (the quick preset's own budget is 7,040 = 20
#           epochs of its 352 windows; 2,200 and 22,000 are about a third and three times that)
#   then every kept model rolled out to 30 frames (stbench eval --t-out 30) on its test set continued to 30 frames.
#
# Estimated cost on the 2-core AMD EPYC dev VM. MEASURED: training seconds per 1,000 sequences from the committed
# quick records (results/example-mmnist-quick-cpu*/records/*.json: timing.train_s / budget.samples_seen; 2
# threads; those runs shared the machine, and the same model's step time varied up to ~5x between runs,
# benchmarks/README.md sections 1 and 5): simvp 126, gsta 57, tau 53, convlstm 137, predrnn 121, predrnn_v2 75,
# mau 34, mim 86, mmvp 195, predformer 19 (sum 903 s; the six seed models 569 s). ESTIMATED from those:
#   mmnist  28,000 sequences per model and seed x 903 s/1,000 x 2 seeds = 14.0 h, + about 80 s per run of
#           test evaluation, profile and precision choice (60 runs: 1.3 h)                          ~ 15 h
#   ns2d    31,200 x 569 s/1,000 x 2 seeds = 9.9 h (same 64 x 64 single-channel frames as mmnist; the one
#           measured ns2d run, TAU quick on ONE thread, took 150 s per 1,000: allow up to ~1.6x)  ~ 10-16 h
#   horizon 96 roll-outs to 30 frames: 3 x the 10-frame test evaluation (mmnist 1,000 sequences,
#           eval_s 7-90 s per model in the records; ns2d 88 windows)                                ~ 2 h
#   total about 27-33 h of the 2 cores (x0.5-2 with the machine's load). Check progress with
#   stbench status --results $OUT/study-mmnist-cpu
set -uo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-2}
OUT=${OUT:-results}
SEEDS=0,1
MMNIST_MODELS=simvp,gsta,tau,convlstm,predrnn,predrnn_v2,mau,mim,mmvp,predformer
NS2D_MODELS=simvp,gsta,tau,convlstm,predrnn,predrnn_v2
MMNIST_OUT=$OUT/study-mmnist-cpu
NS2D_OUT=$OUT/study-ns2d-cpu
T_LONG=30
PART=${1:-all}

sweep() {  # a failed run is recorded (status failed, with its reason) and the sweep goes on: so does this script
  stbench sweep "$@" --preset quick --seeds "$SEEDS" --threads "$THREADS" --resume \
    || echo "study: some runs failed; see stbench status --results ${*: -1}" >&2
}

if [[ $PART == all || $PART == mmnist ]]; then
  sweep --models "$MMNIST_MODELS" --dataset mmnist --budgets samples=2e3,6e3,2e4 --out "$MMNIST_OUT"
fi
if [[ $PART == all || $PART == ns2d ]]; then
  sweep --models "$NS2D_MODELS" --dataset ns2d --budgets samples=2.2e3,7e3,2.2e4 --out "$NS2D_OUT"
fi
if [[ $PART == all || $PART == horizon ]]; then
  for out in "$MMNIST_OUT" "$NS2D_OUT"; do
    [[ -d $out/records ]] || continue
    find "$out/records" -name '*__seed*.safetensors' | sort | while read -r weights; do
      stbench eval --checkpoint "$weights" --t-out "$T_LONG" --out "$out" \
        || echo "study: roll-out of $weights failed" >&2
    done
  done
fi
if [[ $PART == all || $PART == report ]]; then
  for out in "$MMNIST_OUT" "$NS2D_OUT"; do
    [[ -d $out/records ]] && stbench report --results "$out" --format term,md,csv,html
  done
fi
