#!/usr/bin/env bash
# The runs of docs/results/locomotion.md: IQL (and DUAL when METHODS says so) on the hopper
# datasets made by `dualrl collect sac --env hopper --preset small`, and on the ODRL friction
# and gravity shifts of hopper (medium data offline, shifted robot online), split over 2
# processes (one per CPU core). Resumable: rerun it and finished runs are skipped.
#   DATA=/tmp/sac-hopper bash scripts/locomotion_results.sh   (then the report script)
set -euo pipefail
OUT=${OUT:-runs/locomotion}
PY=${PY:-python}
export DUALRL_DATA=${DATA:?set DATA to the folder written by dualrl collect sac --env hopper}
TASKS=(${TASKS:-hopper-medium-v2 hopper-medium-replay-v2 hopper-medium-expert-v2 hopper-friction-2.0
       hopper-gravity-2.0})
# label=<train flags>, several separated by ';', e.g. METHODS="iql=--algo iql;dual=--algo dual"
IFS=';' read -r -a METHODS <<< "${METHODS:-iql=--algo iql}"
SEEDS=(${SEEDS:-0 1 2})
for s in 0 1; do
  "$PY" -m dualrl.experiments.sweep --out "$OUT" --shard "$s/2" --tasks "${TASKS[@]}" \
    --methods "${METHODS[@]}" --seeds "${SEEDS[@]}" --preset cpu -- --progress false \
    > "$OUT.shard$s.log" 2>&1 &
done
wait
