"""The tiny sweep spec of the sweep tests and helpers to compare sweeps."""

from __future__ import annotations

import json
from pathlib import Path

# A tiny IQL budget on the 4x4 map: a run is a few seconds once compiled.
TINY = ("--offline-steps 200 --online-steps 300 --eval-every 100 --checkpoint-every 100 "
        "--scan-chunk 100 --eval-episodes 2 --batch-size 32 --iql.hidden 16,16 "
        "--env.map 4x4 --env.data-episodes 50 --progress false")
SPEC = f"""
name: tiny
preset: quick
seeds: [0]
tasks: [frozenlake-shift]
common: {TINY}
methods:
  iql: --algo iql
  iql-e9: --algo iql --iql.expectile 0.9
retries: 1
"""
BROKEN = """
grids:
  - {}
  - {methods: {broken: --algo iql --dataset /nonexistent/data.hdf5}, seeds: [0]}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def records(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock fields."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "wall_seconds"} for x in lines]


def all_records(out: Path) -> dict[str, list[dict]]:
    return {str(p.parent.relative_to(out)): records(p.parent)
            for p in sorted(out.rglob("summary.json"))}
