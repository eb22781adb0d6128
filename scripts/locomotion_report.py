"""docs/results/locomotion.md from the run directories of experiments/locomotion.yaml and
the metadata of the datasets they trained on.

    python scripts/locomotion_report.py [--runs runs/locomotion] [--data /tmp/sac-hopper]

The replay-protocol page of issue 12 (docs/results/locomotion_online.md) is the same report
over its runs, with its own pairs and findings:

    python scripts/locomotion_report.py --runs runs/locomotion_online \
        --out docs/results/locomotion_online.md --findings scripts/locomotion_online_findings.md \
        --pairs dual-mix:iql-mix iql-mix:iql \
    --title "Locomotion online: issue 12's replay protocol on hopper-medium and hopper friction x2"
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from dualrl.config import preset_overrides
from dualrl.data import load_dataset
from dualrl.experiments.plots import plot_learning_curves
from dualrl.experiments.report import (
    diagnostics_table,
    find_runs,
    mean_se,
    paired,
    run_label,
    table,
)

TASKS = ("hopper-medium-v2", "hopper-medium-replay-v2", "hopper-medium-expert-v2",
         "hopper-friction-2.0", "hopper-gravity-2.0")


def dataset_rows(data: Path) -> list[str]:
    rows = ["| file | transitions | episodes | mean episode return | policy | snapshot step "
            "(its evaluation return) |", "|---|---|---|---|---|---|"]
    for path in sorted(data.glob("hopper-*-v2.hdf5")):
        ds = load_dataset(path)
        meta = ds.metadata
        rets = ds.episode_returns()
        step = meta.get("snapshot_step")
        snap = "-" if step is None else (
            f"{step} ({meta['snapshot_eval_return']:.0f})" if isinstance(step, int) else str(step))
        rows.append(f"| {path.name} | {len(ds)} | {len(rets)} | {rets.mean():.0f} | "
                    f"{meta.get('policy', '-')} | {snap} |")
    return rows


def cell(mean: float, se: float, signed: bool = False) -> str:
    """'mean ± se' to one decimal; the mean alone where se is undefined (one seed)."""
    return f"{mean:{'+' if signed else ''}.1f}" + ("" if math.isnan(se) else f" ± {se:.1f}")


def shift_rows(runs: list[dict]) -> list[str]:
    """The same offline policy in the data's (unshifted) robot and in the shifted one."""
    rows = ["| task | method | seeds | last offline evaluation, unshifted robot | same "
            "policy, shifted robot | online_mean_score (shifted) |", "|---|---|---|---|---|---|"]
    labels = sorted({run_label(r) for r in runs}, key=lambda x: (x != "iql", x))
    for task in TASKS:
        for label in labels:
            sel = [r for r in runs if r["task"] == task and "offline_data_env_score" in r
                   and run_label(r) == label]
            if task.endswith("-v2") or not sel:
                continue
            cells = [mean_se([r[k] for r in sel]) for k in
                     ("offline_data_env_score", "offline_score", "online_mean_score")]
            rows.append(f"| {task} | {label} | {len(sel)} | "
                        + " | ".join(cell(m, se) for m, se in cells) + " |")
    return rows


def paired_rows(runs: list[dict], pairs: list[tuple[str, str]]) -> list[str]:
    """a − b per task on the seeds both ran: seed i of both methods saw the same data and
    environment seeds, so the paired difference removes the seed-to-seed spread."""
    metrics = ("offline_score", "online_mean_score", "final_score")
    rows = ["| task | a − b | seeds | " + " | ".join(metrics) + " |",
            "|---|---|---|" + "---|" * len(metrics)]
    for task in TASKS:
        for a, b in pairs:
            diffs = [paired(runs, task, a, b, m) for m in metrics]
            if diffs[0] is None:
                continue
            cells = [cell(mean, se, signed=True) for mean, se, _ in diffs]
            rows.append(f"| {task} | {a} − {b} | {diffs[0][2]} | " + " | ".join(cells) + " |")
    return rows if len(rows) > 2 else []


def online_gain_rows(runs: list[dict]) -> list[str]:
    """Does the online phase move the policy? Per run, online_mean − offline and final −
    offline (the offline policy scored in the online robot), then mean ± s.e. over seeds."""
    rows = ["| task | method | seeds | online_mean − offline | final − offline | best − offline |",
            "|---|---|---|---|---|---|"]
    for task in TASKS:
        for label in sorted({run_label(r) for r in runs if r["task"] == task}):
            sel = [r for r in runs if r["task"] == task and run_label(r) == label]
            cells = [cell(*mean_se([r[key] - r["offline_score"] for r in sel]), signed=True)
                     for key in ("online_mean_score", "final_score", "best_score")]
            rows.append(f"| {task} | {label} | {len(sel)} | " + " | ".join(cells) + " |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="runs/locomotion")
    parser.add_argument("--data", default="/tmp/sac-hopper")
    parser.add_argument("--out", default="docs/results/locomotion.md")
    parser.add_argument("--findings", default=str(Path(__file__).with_name(
        "locomotion_findings.md")), help="hand-written text appended under the tables")
    parser.add_argument("--title", default="MuJoCo locomotion: hopper datasets and ODRL shifts")
    parser.add_argument("--pairs", nargs="+", default=["dual:iql"],
                        help="a:b method labels whose per-seed differences are tabulated")
    args = parser.parse_args()
    out = Path(args.out)
    runs = find_runs([args.runs])
    pairs = [tuple(p.split(":", 1)) for p in args.pairs]
    paired_lines = paired_rows(runs, pairs)
    loop = preset_overrides("locomotion", "cpu")["loop"]
    lines = [
        f"# {args.title}",
        "",
        "Made by `DUALRL_DATA=<dir> dualrl sweep experiments/locomotion.yaml` (runs) and "
        f"`python scripts/locomotion_report.py` (this page: `--out {out.name}`). Offline "
        "data: the hopper datasets written by `dualrl collect sac --env hopper --preset "
        "small` (docs/results/collect_sac.md), read from the data directory under D4RL's names. "
        "hopper-friction-2.0 and hopper-gravity-2.0 train offline on hopper-medium-v2 in the "
        "unshifted robot; the online phase and every evaluation use the shifted robot "
        "(all friction coefficients x2; gravity x2 = -19.62).",
        "",
        f"Budget (`cpu` preset of the locomotion family): {loop['offline_steps']:,} offline "
        f"gradient updates + {loop['online_steps']:,} online environment steps (utd 1), "
        f"evaluation every {loop['eval_every']:,} steps with {loop['eval_episodes']} episodes "
        "of the deterministic policy; IQL 2x256, expectile 0.7, beta 3, rewards x 1000 / "
        "(return spread of D_off). This is about 1/30 of the paper's offline and 1/50 of its "
        "online budget. Scores are D4RL-normalised (hopper [-20.27, 3234.3]; ODRL tasks "
        "[-26.336, 3234.3]); mean ± standard error over seeds; offline_score = last offline "
        "evaluation, online_mean_score = mean of the online evaluations (the paper's metric).",
        "",
        "## Datasets",
        "",
        *dataset_rows(Path(args.data)),
        "",
        "## Results",
        "",
        table(runs, None) if runs else "(no runs found)",
        "",
        *(["Paired on the seeds both ran (mean ± standard error of the per-seed "
           "differences):", "", *paired_lines, ""] if paired_lines else []),
        "Does the online phase move the policy? Per seed, the online scores minus the offline "
        "policy's score in the online robot (mean ± standard error over seeds):",
        "",
        *online_gain_rows(runs),
        "",
        "The shift tasks: the offline policy evaluated in the robot its data came from, and in "
        "the shifted robot of the online phase (the loop's `offline_data_env_score` and "
        "`offline_score`):",
        "",
        *shift_rows(runs),
        "",
        "DUAL's acting diagnostics, averaged over the online evaluations of every seed "
        "(standard deviations of the action, whose range is [−1, 1]; shift_distance = "
        "d(ŝ_t, s_t) of Eq. 8, whose λ_shift · d is added to the action variance):",
        "",
        diagnostics_table(runs),
        "",
        "Learning diagnostics (issue 12), averaged over the online evaluations of every seed: "
        "the online share of the batches, V at the initial states, the mean |Δa| exploration "
        "adds to the deterministic action, and the training episodes' returns (rewards as the "
        "environment gives them):",
        "",
        diagnostics_table(runs, keys=("online_share", "v_init", "explore_delta",
                                      "train_return")),
        "",
    ]
    for task in TASKS:
        dirs = [r["run_dir"] for r in runs if r["task"] == task]
        if dirs:
            png = out.with_name(f"{out.stem}_{task}.png")
            plot_learning_curves(dirs, png, f"{task} (cpu preset)",
                                 offline_steps=loop["offline_steps"])
            lines += [f"![learning curves, {task}]({png.name})", ""]
    findings = Path(args.findings)
    if findings.exists():
        lines += [findings.read_text().strip(), ""]
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
