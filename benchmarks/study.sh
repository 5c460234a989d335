#!/usr/bin/env bash
# The CPU compute study of issue 26 (docs/protocol.md, "Compute study"): recurrent vs parallel at equal training
# compute, and beyond the trained horizon. Exact commands; RESUMABLE: run the script again after an interruption
# (completed runs and roll-outs are skipped, interrupted runs continue from their checkpoints with --resume).
#
#   bash benchmarks/study.sh                 # everything, in the order below (days of 2 CPU cores, see below)
#   bash benchmarks/study.sh mmnist          # one part: mmnist | mmnist-more | mmnist-quick | ns2d | horizon | report
#   THREADS=2 OUT=results COMMIT=1 bash benchmarks/study.sh mmnist   # COMMIT=1: git-commit each finished cell
#
# Moving MNIST shares its folder with the zoo's quick leaderboard (benchmarks/zoo_quick.sh,
# results/zoo-mmnist-quick-cpu): the quick preset's own budget, samples=4000, is one of the study's budgets (six
# seed models x seeds 0,1 there), so the study adds samples=4e2, 2e3 and 2e4 (a tenth, half and five times it)
# and `stbench report` on that folder draws the compute study across them. 4e2..4e3 is the 10x span two CPU
# cores can afford in one session; 2e4 extends it upward (hours per seed, continued over several sessions).
# Order, so that an interrupted study still has whole comparisons: every seed model at 4e2 (seeds 0 and 1), then
# at 2e3 and 2e4 seed 0, then seed 1 of both; part mmnist-more does the same for mau mim mmvp predformer
# (their 4e3 runs are the zoo's, seed 0 only, without kept weights); part mmnist-quick trains the ten models'
# 4e3 runs (seeds 0, 1) again where no weights were kept, so that every budget has its 30-frame roll-outs.
#   ns2d: the six seed models, samples = 704 / 2,200 / 7,040 / 22,000, its own folder; 7,040 is the quick
#         preset's own budget (20 epochs of its 352 windows), so its board is also the ns2d example leaderboard;
#         704 (2 epochs) to 7,040 is its 10x span, 22,000 extends it upward.
#   horizon: every kept model (the sweep keeps weights) rolled out to 30 frames (stbench eval --t-out 30) on its
#         test set continued to 30 frames; done right after training, since 24+ sets of weights (3-4 MB each) are
#         not all committed.
#
# Estimated cost on the 2-core AMD EPYC dev VM (AVX512-BF16, bf16 chosen by --precision auto). MEASURED: training
# seconds per 1,000 sequences of the zoo's idle quick runs (results/zoo-mmnist-quick-cpu, timing.train_s /
# budget.samples_seen): convlstm 30, gsta 34, simvp 37, tau 38-41, predrnn 68-70, predrnn_v2 77 (six models 285 s),
# plus about 30 s per run of profile, precision choice and test evaluation. ESTIMATED from those:
#   mmnist       22,000 sequences per model and seed x 285 s/1,000 = 1.75 h per seed, ~3.6 h for two
#   mmnist-more  mau mim mmvp predformer: not yet timed idle (the older shared-machine runs suggest 1-3 h)
#   ns2d         31,200 x 285 s/1,000 x 2 seeds ~ 5 h (same 64 x 64 single-channel frames)
#   horizon      3 x a 10-frame test evaluation per kept model, done as each run ends
# On an AVX2-only 2-core AMD EPYC (fp32, no native bf16), MEASURED on ns2d at samples=2200 (idle, 2026-12-06):
# training seconds per 1,000 sequences gsta 82, simvp 86, convlstm 93, tau 95, predrnn 193, predrnn_v2 196 (six
# models 745 s, 2.6x the AVX512-BF16 figures above), so ns2d at 22,000 costs ~4.6 h per seed on such a CPU.
# On a 2-thread Intel Xeon with AVX-512 and no bf16 (fp32 channels_last / NCHW chosen), MEASURED at samples=2000
# (idle, 2026-12-07): mim 315 / 402 s and mmvp 756 / 799 s of training (seeds 0 / 1); mmvp's 30-frame roll-out
# took ~11 min per seed there (the horizon part is not free for the heavy models).
# On an AVX2-only 2-core AMD EPYC (fp32), MEASURED wall time of whole cells (two seeds, test evaluation and the
# 30-frame roll-outs included; idle, 2026-12-07): mmnist samples=400 tau 8.5 min, predrnn 9.5, simvp 7.5, gsta 7,
# convlstm 4, predrnn_v2 9 (46 min for the six), mau 5, predformer 2.5, mim 12; ns2d samples=704 the six in 22 min.
# A roll-out of the 1,000 mmnist test sequences to 30 frames took 2-2.5 min per SimVP-family run, 1-2 per recurrent.
# On the AVX512-BF16 2-core EPYC (bf16 chosen for all but PredFormer), MEASURED 2026-12-07, part mmnist-quick: the
# sixteen cells (six seed models x 2 seeds, mau mim mmvp predformer seed 0; test evaluation and roll-outs included)
# in 1 h 47 min: 3-9 min a cell, mmvp 26 min (its roll-out 10 of them).
# The CPU kinds' records carry different device names; the report never compares their train times.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."  # also when sourced

THREADS=${THREADS:-2}
OUT=${OUT:-results}
SEEDS=0,1
COMMIT=${COMMIT:-0}
SEED_MODELS=tau,predrnn,simvp,gsta,convlstm,predrnn_v2
MORE_MODELS=mau,mim,mmvp,predformer
NS2D_MODELS=$SEED_MODELS
MMNIST_OUT=$OUT/zoo-mmnist-quick-cpu
NS2D_OUT=$OUT/study-ns2d-cpu
T_LONG=30
PART=${1:-all}
. benchmarks/commit_records.sh

commit() {  # message
  [[ $COMMIT == 1 ]] || return 0
  # records, per-sequence values, examples and model cards; not the weights (3-4 MB a run; the roll-outs above
  # already used them; keep them on disk, or commit the ones you want to share)
  commit_records "$1" "$MMNIST_OUT/records" "$NS2D_OUT/records"
}

rollouts() {  # folder: every kept model not yet rolled out to T_LONG frames
  [[ -d $1/records ]] || return 0
  find "$1/records" -name '*__seed*.safetensors' | sort | while read -r weights; do
    local stem dir
    stem=$(basename "$weights" .safetensors); dir=$(dirname "$weights")
    compgen -G "$dir/${stem%%__*}__evaluated_${stem}-*__t${T_LONG}.json" >/dev/null && continue
    stbench eval --checkpoint "$weights" --t-out "$T_LONG" --out "$1" \
      || echo "study: roll-out of $weights failed" >&2
  done
}

sweep() {  # dataset models budgets seeds out: one cell at a time, each committed (COMMIT=1) and rolled out
  local ds=$1 models=$2 budgets=$3 seeds=$4 out=$5 m b kind=${3%%=*}
  for b in $(tr , ' ' <<<"${budgets#*=}"); do
    b="$kind=$b"  # each item with its kind: samples=2e3,2e4 -> samples=2e3, samples=2e4
    for m in ${models//,/ }; do
      # a failed run is recorded (status failed, with its reason) and the study goes on
      stbench sweep --models "$m" --dataset "$ds" --budgets "$b" --preset quick --seeds "$seeds" \
        --threads "$THREADS" --resume --out "$out" || echo "study: $m at $b failed; see stbench status --results $out" >&2
      rollouts "$out"
      commit "study $ds ($b, seeds $seeds): $m"
    done
  done
}

if [[ $PART == all || $PART == mmnist ]]; then
  sweep mmnist "$SEED_MODELS" samples=4e2 "$SEEDS" "$MMNIST_OUT"
  sweep mmnist "$SEED_MODELS" samples=2e3,2e4 0 "$MMNIST_OUT"
  sweep mmnist "$SEED_MODELS" samples=2e3,2e4 1 "$MMNIST_OUT"
fi
if [[ $PART == all || $PART == mmnist-more ]]; then
  sweep mmnist "$MORE_MODELS" samples=4e2,2e3,2e4 "$SEEDS" "$MMNIST_OUT"  # 4e3: benchmarks/zoo_quick.sh
fi
if [[ $PART == all || $PART == mmnist-quick ]]; then
  # the quick budget (samples=4000) of the ten study models, seeds 0 and 1: the zoo's runs kept no weights, so a
  # run without its 30-frame roll-out and without weights is trained again (--force replaces its record) to keep
  # them; an interrupted one resumes. Seed 1 first: mau mim mmvp predformer have theirs, so after seed 1 every
  # model has one 4e3 roll-out
  for seed in 1 0; do
    for m in $(tr , ' ' <<<"$SEED_MODELS,$MORE_MODELS"); do
      stem=$MMNIST_OUT/records/mmnist/quick/${m}__seed$seed
      compgen -G "${stem%/*}/${m}__evaluated_${m}__seed$seed-*__t$T_LONG.json" >/dev/null && continue
      if [[ ! -f $stem.safetensors ]]; then
        again=--resume
        grep -q '"status": "completed"' "$stem.json" 2>/dev/null && again=--force
        stbench run --models "$m" --dataset mmnist --preset quick --seeds "$seed" --threads "$THREADS" $again \
          --out "$MMNIST_OUT" || echo "study: $m on mmnist quick seed $seed failed" >&2
      fi
      rollouts "$MMNIST_OUT"
      commit "study mmnist (quick, samples=4000, seed $seed, weights kept for the roll-out): $m"
    done
  done
fi
if [[ $PART == all || $PART == ns2d ]]; then
  # the middle budget is the quick preset's own (samples=7040): its board is the ns2d example leaderboard
  # (issue 23), seed 0 of every model first
  for seed in 0 1; do
    for m in ${NS2D_MODELS//,/ }; do
      stbench run --models "$m" --dataset ns2d --preset quick --seeds "$seed" --threads "$THREADS" --resume \
        --out "$NS2D_OUT" || echo "study: $m on ns2d quick failed; see stbench status --results $NS2D_OUT" >&2
      rollouts "$NS2D_OUT"
      commit "study ns2d (quick, samples=7040, seed $seed): $m"
    done
  done
  sweep ns2d "$NS2D_MODELS" samples=704,2.2e3,2.2e4 "$SEEDS" "$NS2D_OUT"
fi
if [[ $PART == all || $PART == horizon ]]; then
  for out in "$MMNIST_OUT" "$NS2D_OUT"; do rollouts "$out"; done
fi
if [[ $PART == all || $PART == report ]]; then
  for out in "$MMNIST_OUT" "$NS2D_OUT"; do
    [[ -d $out/records ]] && stbench report --results "$out" --format term,md,csv,html
  done
fi
