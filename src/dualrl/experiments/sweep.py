"""Local sweeps: tasks × methods × seeds, one run directory each, run one after another
(resumable: finished runs are skipped, interrupted ones resumed).

    python -m dualrl.experiments.sweep --out runs/fl --tasks frozenlake-shift \\
        --methods "dual=--algo dual" "iql=--algo iql" \\
                  "dual-no-shift=--algo dual --shift-weight 0" --seeds 0 1 2 \\
        --preset cpu -- --online-steps 15000

A method is `label=<dualrl train flags>`; flags after `--` apply to every run. `--shard I/N`
runs every N-th run of the seed-major list from the I-th (0-based): N processes with shards
0..N-1 split one sweep between N cores. DUAL's `--dual.stage-cache DIR` lets the methods of a
seed share their planner / student stages (a lock makes one process compute each).
"""

from __future__ import annotations

import argparse
import json
import shlex
import traceback
from pathlib import Path

from dualrl.o2o.rundir import RunDir


def main(argv: list[str] | None = None) -> int:
    from dualrl.cli import build_train_config
    from dualrl.o2o.loop import resume, train

    parser = argparse.ArgumentParser(prog="python -m dualrl.experiments.sweep")
    parser.add_argument("--out", required=True)
    parser.add_argument("--tasks", nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", required=True, help="label=<train flags>")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--shard", default="0/1", help="I/N: this process's share of the runs")
    parser.add_argument("common", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    common = [a for a in args.common if a != "--"]
    shard, n_shards = (int(x) for x in args.shard.split("/"))
    if not 0 <= shard < n_shards:
        parser.error(f"--shard {args.shard}: need 0 <= I < N")
    # seed-major: partial sweeps still cover every method
    plan = [(seed, task, method) for seed in args.seeds for task in args.tasks
            for method in args.methods]
    for i, (seed, task, method) in enumerate(plan):
        if i % n_shards != shard:
            continue
        label, _, flags = method.partition("=")
        out = Path(args.out) / task / label / f"seed{seed}"
        if (out / "summary.json").exists():
            continue
        config, _ = build_train_config(
            ["--task", task, "--seed", str(seed), "--preset", args.preset,
             *shlex.split(flags), *common])
        try:
            if RunDir(out).exists():
                resume(out)
            else:
                train(config, out)
            # the label names the method in reports (e.g. an ablation of DUAL)
            cfg = json.loads((out / "config.json").read_text())
            cfg["label"] = label
            (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
            summary = json.loads((out / "summary.json").read_text())
            summary["label"] = label
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        except Exception:  # keep sweeping; the failure is in the log
            traceback.print_exc()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
