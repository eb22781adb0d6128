"""docs/results/frozenlake.md from run directories: the grid of scripts/frozenlake_results.sh
(removed after d250921; 5k offline + 10k online, every method and ablation, both tasks),
and the longer-budget sweep (10k + 20k, DUAL / IQL / two ablations on the shift task).

    python scripts/frozenlake_report.py [--grid runs/fl-grid] [--long runs/frozenlake]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from dualrl.experiments.plots import plot_learning_curves
from dualrl.experiments.report import diagnostics_table, find_runs, paired, run_label, table

LEGEND = {
    "dual": "DUAL, full method (`--algo dual`)",
    "iql": "IQL, Gaussian actor (`--algo iql`)",
    "iql-la": "IQL w LA: our last-layer Laplace acting on IQL's actor (`--algo iql --laplace`)",
    "dual-no-planner": "w/o planner: horizon-1 action diffusion, no transition model "
                       "(`--no-planner`)",
    "dual-no-distill": "w/o distillation: the K = 16 DDIM teacher is the actor (`--no-distill`)",
    "dual-no-epistemic": "w/o epistemic UQ: σ_ψ only (`--no-epistemic`)",
    "dual-no-shift": "w/o shift-aware: λ_shift = 0 (`--shift-weight 0`)",
    "dual-uq-sampling": "w sampling: sub-policies from latent z draws (`--uq sampling`)",
    "dual-la-elbo": "w LA-ELBO: Laplace on the unweighted diffusion loss (`--uq la-elbo`)",
    **{f"dual-shift-{w}": f"λ_shift = {w} (default 0.5; `--shift-weight {w}`)"
       for w in ("0.1", "0.25", "0.75", "1.0")},
    "dual-temp-100": "posterior temperature T = 100: the data term of the precision / 100 "
                     "(`--dual.temperature 100`)",
    "dual-refit-500": "Laplace refit every 500 online steps instead of 2000 "
                      "(`--dual.refit-every 500`)",
}
PLOTTED = ("dual", "iql", "iql-la", "dual-no-epistemic", "dual-no-shift", "dual-no-planner")
TASKS = ("frozenlake-shift", "frozenlake-noshift")


def fmt(x) -> str:
    if x is None:
        return "-"
    mean, se, n = x
    return f"{mean:+.1f}" + ("" if math.isnan(se) else f" ± {se:.1f}") + f" (n={n})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", default="runs/fl-grid")
    parser.add_argument("--long", default="runs/frozenlake")
    parser.add_argument("--out", default="docs/results/frozenlake.md")
    args = parser.parse_args()
    out = Path(args.out)
    grid = find_runs([args.grid])
    long = find_runs([args.long]) if Path(args.long).exists() else []
    order = list(LEGEND)  # rows in the legend's order within each task

    lines = [
        "# Frozen-Lake: DUAL, baselines and ablations",
        "",
        "Made by `bash scripts/frozenlake_results.sh` at commit d250921 (runs; that script is "
        "gone, `dualrl sweep experiments/frozenlake_grid.yaml` runs the grid under the current "
        "protocol) and "
        "`python scripts/frozenlake_report.py` (this page). Tasks: `frozenlake-shift` (8×8, "
        "offline data at slip 0.0, online phase and every evaluation at slip 0.3) and "
        "`frozenlake-noshift` (slip 0.0 throughout). Offline data: ε-greedy tabular Q-learning, "
        "data seed 0 for every run; the run seed sets networks, sampling and environment seeds. "
        "Score = 100 × success rate over 100 evaluation episodes of the deterministic policy "
        "in the ONLINE environment. offline_score: last offline evaluation; online_mean_score: "
        "mean of the online evaluations (the paper's metric); final_score: last evaluation; "
        "best_score: best evaluation. Mean ± standard error over seeds.",
        "",
        "Budget of the grid (a CPU budget, far below the paper's): `cpu` preset, 5k offline "
        "gradient updates + 10k online environment steps, utd 1, evaluation every 2.5k steps; "
        "DUAL: planner 10k updates (MLP 128×128, horizon 8, v-parameterisation), distillation "
        "16→1 with 1.5k updates per round, Laplace refit every 2k online steps on 100k rows, "
        "M = 10, λ_shift = 0.5; critic 2×128, expectile 0.7, β 10 for IQL and DUAL. The DUAL "
        "variants of a seed share its planner/student stages (`--dual.stage-cache`). "
        "Every row has seeds 0–4 on both tasks. The grid was run over three sessions; rows run "
        "in different sessions can differ by one evaluation episode where floating-point "
        "details of the code changed in between (seed 1's offline score is 60 in the dual row "
        "and 59 in the λ_shift and probe rows).",
        "",
        "| method | meaning |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in LEGEND.items()],
        "",
        "## Results (5k offline + 10k online)",
        "",
        table(grid, order),
        "",
        "Paired differences of online_mean_score on the same seeds (method − reference):",
        "",
        "| task | comparison | online_mean_score diff | final_score diff |",
        "|---|---|---|---|",
    ]
    for task in TASKS:
        for a, b in [("dual", "iql"), ("iql-la", "iql"), ("dual", "dual-no-epistemic"),
                     ("dual", "dual-no-shift"), ("dual", "dual-no-planner"),
                     ("dual", "dual-no-distill"), ("dual", "dual-uq-sampling"),
                     ("dual", "dual-la-elbo"), ("dual-shift-0.1", "dual"),
                     ("dual-shift-0.25", "dual"), ("dual-shift-0.75", "dual"),
                     ("dual-shift-1.0", "dual"), ("dual-temp-100", "dual"),
                     ("dual-refit-500", "dual")]:
            d1 = paired(grid, task, a, b, "online_mean_score")
            if d1 is not None:
                d2 = paired(grid, task, a, b, "final_score")
                lines.append(f"| {task} | {a} − {b} | {fmt(d1)} | {fmt(d2)} |")
    lines += ["", "Online acting diagnostics (mean over the online evaluations of all seeds; "
              "stds are per action dimension in the normalised one-hot action space):", "",
              diagnostics_table(grid, order), ""]
    for task in TASKS:
        dirs = [r["run_dir"] for r in grid if r["task"] == task and run_label(r) in PLOTTED]
        if dirs:
            png = out.with_name(f"frozenlake_{task.split('-')[1]}.png")
            plot_learning_curves(dirs, png, f"{task} (5k offline + 10k online)",
                                 offline_steps=5000)
            lines += [f"![learning curves, {task}]({png.name})", ""]
    if long:
        lines += [
            "## Longer budget (10k offline + 20k online, shift task)",
            "",
            "Same settings otherwise; made before the grid with `python -m "
            "dualrl.experiments.sweep --out runs/frozenlake --tasks frozenlake-shift --methods "
            "'dual=--algo dual' 'iql=--algo iql' 'dual-no-shift=--algo dual --shift-weight 0' "
            "'dual-no-epistemic=--algo dual --no-epistemic' --seeds 0 1 2 --preset cpu -- "
            "--offline-steps 10000 --online-steps 20000 --eval-every 2500 --eval-episodes 100 "
            "--progress false` (then seeds 3 4 for dual and iql), at commit 00dcb6d; DUAL's "
            "acting has since moved the ŝ prediction and noise off the critical path, with the "
            "same numbers by construction (same noise draws, same prediction).",
            "",
            table(long, order),
            "",
            "| task | comparison | online_mean_score diff | final_score diff |",
            "|---|---|---|---|",
            *[f"| frozenlake-shift | {a} − {b} | "
              f"{fmt(paired(long, 'frozenlake-shift', a, b, 'online_mean_score'))} | "
              f"{fmt(paired(long, 'frozenlake-shift', a, b, 'final_score'))} |"
              for a, b in [("dual", "iql"), ("dual", "dual-no-epistemic"),
                           ("dual", "dual-no-shift")]],
            "",
        ]
        png = out.with_name("frozenlake_shift_long.png")
        plot_learning_curves([r["run_dir"] for r in long], png,
                             "frozenlake-shift (10k offline + 20k online)", offline_steps=10000)
        lines += [f"![learning curves, longer budget]({png.name})", ""]
    findings = Path(__file__).with_name("frozenlake_findings.md")
    if findings.exists():
        lines += [findings.read_text().strip(), ""]
    lines += ["Run directories: " + ", ".join(sorted({r["run_dir"] for r in grid + long})), ""]
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
