#!/usr/bin/env bash
# The Frozen-Lake results grid of docs/results/frozenlake.md: DUAL, IQL, IQL w LA and the DUAL
# ablations (SPEC §10) on frozenlake-shift and frozenlake-noshift, split over 2 processes
# (one per CPU core), then the report. Resumable: rerun it and finished runs are skipped.
#   bash scripts/frozenlake_results.sh            (OUT=runs/fl-grid by default)
set -euo pipefail
OUT=${OUT:-runs/fl-grid}
PY=${PY:-python}
BUDGET=(--offline-steps 5000 --online-steps 10000 --eval-every 2500 --eval-episodes 100
        --progress false)
C="--dual.stage-cache $OUT/stage-cache"  # the DUAL variants of a seed share planner/student
MAIN=("dual=--algo dual $C" "iql=--algo iql" "dual-no-epistemic=--algo dual --no-epistemic $C"
      "iql-la=--algo iql --laplace" "dual-no-shift=--algo dual --shift-weight 0 $C"
      "dual-no-planner=--algo dual --no-planner $C" "dual-uq-sampling=--algo dual --uq sampling $C"
      "dual-la-elbo=--algo dual --uq la-elbo $C")
LAMBDAS=()
for w in 0.1 0.25 0.75 1.0; do LAMBDAS+=("dual-shift-$w=--algo dual --shift-weight $w $C"); done
NO_DISTILL=("dual-no-distill=--algo dual --no-distill $C")
# why DUAL does (not) beat IQL: the posterior's scale (temperature T divides the data term of
# the precision, so the epistemic std grows ~ sqrt(T)) and the refit cadence
PROBES=("dual-temp-100=--algo dual --dual.temperature 100 $C"
        "dual-refit-500=--algo dual --dual.refit-every 500 $C")
SEEDS=(${SEEDS:-0 1 2 3 4})
FEW_SEEDS=(${FEW_SEEDS:-0 1 2})

shard() {  # in order of priority: a partial grid still has the main comparisons
  local s=$1
  sweep() { "$PY" -m dualrl.experiments.sweep --out "$OUT" --shard "$s/2" "$@"; }
  sweep --tasks frozenlake-shift --methods "${MAIN[@]}" --seeds "${SEEDS[@]}" -- "${BUDGET[@]}"
  sweep --tasks frozenlake-noshift --methods "${MAIN[@]}" --seeds "${FEW_SEEDS[@]}" -- \
    "${BUDGET[@]}"
  sweep --tasks frozenlake-shift --methods "${LAMBDAS[@]}" "${PROBES[@]}" \
    --seeds "${FEW_SEEDS[@]}" -- "${BUDGET[@]}"
  sweep --tasks frozenlake-shift --methods "${NO_DISTILL[@]}" --seeds "${FEW_SEEDS[@]}" -- \
    "${BUDGET[@]}"
  sweep --tasks frozenlake-noshift --methods "${MAIN[@]}" --seeds "${SEEDS[@]}" -- \
    "${BUDGET[@]}"
  sweep --tasks frozenlake-noshift --methods "${NO_DISTILL[@]}" --seeds "${FEW_SEEDS[@]}" -- \
    "${BUDGET[@]}"
}
shard 0 > "$OUT.shard0.log" 2>&1 &
shard 1 > "$OUT.shard1.log" 2>&1 &
wait
