#!/usr/bin/env bash
# Times `dualrl collect sac --preset small` for each robot named, one after another, writing
# <OUT_ROOT>/sac-<robot>/collect.log with the shell's wall clock and the load averages at the
# start and end (scripts/collect_sac_timing.py reads them into docs/results/collect_sac.md).
#   OUT_ROOT=/tmp bash scripts/collect_sac_timed.sh halfcheetah walker2d
set -uo pipefail
OUT_ROOT=${OUT_ROOT:-/tmp}
PRESET=${PRESET:-small}
for robot in "$@"; do
  out="$OUT_ROOT/sac-$robot"
  mkdir -p "$out"
  log="$out/collect.log"
  echo "started $(date -Iseconds) load $(cut -d' ' -f1-3 /proc/loadavg)" > "$log"
  start=$(date +%s)
  dualrl collect sac --env "$robot" --preset "$PRESET" --out "$out" >> "$log" 2>&1
  rc=$?
  echo "finished $(date -Iseconds) rc=$rc wall_seconds=$(( $(date +%s) - start ))" \
       "load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$log"
done
