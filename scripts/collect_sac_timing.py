"""docs/results/collect_sac.md from `dualrl collect sac` output directories, one per robot:
wall time, returns and sizes, all read from what the runs wrote (`<robot>-sac/summary.json`,
the datasets' own metadata and, when present, `collect.log` with the shell's wall clock, as
written by scripts/collect_sac_timed.sh).

    OUT_ROOT=/tmp bash scripts/collect_sac_timed.sh hopper halfcheetah walker2d
    python scripts/collect_sac_timing.py --runs hopper=/tmp/sac-hopper \
        halfcheetah=/tmp/sac-halfcheetah walker2d=/tmp/sac-walker2d
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from dualrl.collect.behaviour_datasets import DATASET_NAMES, dataset_path, run_dir
from dualrl.data import load_dataset

BUDGET_MINUTES = 45  # the small preset's promise per robot on 2 CPU cores


def external_wall_seconds(log: Path) -> tuple[float | None, str | None]:
    """`wall_seconds=N` and the load averages the measuring shell wrote into collect.log."""
    if not log.exists():
        return None, None
    text = log.read_text()
    wall = re.search(r"wall_seconds=(\d+)", text)
    loads = re.findall(r"load ([\d.]+ [\d.]+ [\d.]+)", text)
    return (float(wall.group(1)) if wall else None,
            " → ".join(loads) if loads else None)


def total_seconds(summary: dict, log: Path) -> tuple[float, str | None]:
    """The command's wall clock when the shell recorded it in `log`, else the run's own
    total; and the load averages the shell wrote."""
    wall, loads = external_wall_seconds(log)
    return (wall if wall is not None else summary["seconds"]["total"]), loads


def read_summary(data_dir: Path, robot: str) -> dict:
    return json.loads((run_dir(data_dir, robot) / "summary.json").read_text())


def overview(runs: list[tuple[str, Path, dict]]) -> list[str]:
    """One line per robot: time against the budget, and the returns the datasets got."""
    lines = ["| robot | minutes | budget | expert eval return | medium dataset score | "
             "expert dataset score | medium-replay transitions |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for robot, data_dir, summary in runs:
        minutes = total_seconds(summary, data_dir / "collect.log")[0] / 60
        scores = {name: summary["datasets"][name]["source_policy_score"]
                  for name in ("medium", "expert")}
        lines.append(f"| {robot} | {minutes:.1f} | "
                     f"{'within' if minutes <= BUDGET_MINUTES else 'OVER'} | "
                     f"{summary['expert_eval_return']:.1f} | {scores['medium']:.1f} | "
                     f"{scores['expert']:.1f} | "
                     f"{summary['datasets']['medium-replay']['n_transitions']:,} |")
    return lines + [
        "",
        "medium-replay is SAC's replay buffer up to the medium snapshot (the snapshot closest to "
        "1/3 of the expert return), so its size is where that snapshot fell, not a choice: a "
        "robot that reaches 1/3 of its best return early gets a small medium-replay set.",
    ]


def render(data_dir: Path, robot: str, summary: dict) -> str:
    seconds, machine = summary["seconds"], summary["machine"]
    wall, loads = external_wall_seconds(data_dir / "collect.log")  # wall: a row of its own
    total = wall if wall is not None else seconds["total"]
    verdict = "within" if total <= BUDGET_MINUTES * 60 else "OVER"
    cfg = summary["config"]
    lines = [
        f"## `{robot}`",
        "",
        f"Written by `dualrl collect sac --env {robot} --preset {summary['preset']} "
        f"--out {data_dir}`. "
        f"Machine: {machine['cpu_count']} CPU cores ({machine['processor']}), JAX on "
        f"{machine['jax_backend']}. 1-min load average at the start → end of the command: "
        f"{loads or machine['load_average_start']} (above {machine['cpu_count']}: other jobs "
        "were competing for the cores).",
        "",
        f"SAC: {summary['sac_steps']:,} environment steps, one update per step "
        f"(fused {cfg['update_chunk']} at a time), {tuple(cfg['sac']['hidden'])} ReLU, batch "
        f"{cfg['sac']['batch_size']}, seed {summary['seed']}; snapshot every "
        f"{cfg['snapshot_every']:,} steps, evaluated over {cfg['eval_episodes']} deterministic "
        "episodes.",
        "",
        "### Time",
        "",
        "| part | seconds | minutes |",
        "|---|---:|---:|",
    ]
    parts = [
        ("SAC training (incl. snapshot evaluations, checkpoints)",
         seconds["sac_train_this_session"]),
        ("dataset rollouts", seconds["datasets_collect"]),
        ("writing the HDF5 files", seconds["datasets_write"]),
        ("total inside `collect_sac_datasets`", seconds["total"]),
    ]
    if wall is not None:
        parts.append(("whole command, shell wall clock (incl. start-up)", wall))
    lines += [f"| {name} | {value:,.1f} | {value / 60:.1f} |" for name, value in parts]
    if summary.get("resumed_at_step"):
        lines.append(f"\nResumed from a checkpoint at step {summary['resumed_at_step']:,}; "
                     f"training over all sessions: {seconds['sac_train_all_sessions']:,.0f} s.")
    lines += [
        "",
        f"**{total / 60:.1f} min: {verdict} the {BUDGET_MINUTES}-minute budget.**",
        "",
        "### Datasets",
        "",
        f"Expert snapshot (best evaluation): return {summary['expert_eval_return']:.1f}; "
        "medium = the snapshot closest to 1/3 of it. Returns below are the datasets' own "
        "episodes (stochastic policy for medium / expert; episodes cut by the transition "
        "budget left out); score = D4RL-normalised.",
        "",
        "| file | transitions | episodes | return (mean ± std) | score | policy | snapshot "
        "step (eval return) | MB |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name in DATASET_NAMES:
        path = dataset_path(data_dir, robot, name)
        ds = load_dataset(path)  # the counts as a reader sees them, not as the writer meant
        meta = ds.metadata
        step = meta.get("snapshot_step")
        snap = "-" if step is None else f"{step:,} ({meta['snapshot_eval_return']:.1f})"
        if name == "medium-expert":
            snap = f"{meta['medium_snapshot_step']:,} + {meta['expert_snapshot_step']:,}"
        lines.append(
            f"| `{path.name}` | {len(ds):,} | {ds.num_episodes:,} | "
            f"{meta['source_policy_return']:.1f} ± {meta['source_policy_return_std']:.1f} | "
            f"{meta['source_policy_score']:.1f} | {meta['policy']} | {snap} | "
            f"{path.stat().st_size / 1e6:.1f} |")
    lines += ["", "### Learning curve (deterministic evaluation of each snapshot)", "",
              *curve_table(summary["snapshots"])]
    return "\n".join(lines)


def curve_table(snapshots: list[dict], per_row: int = 10) -> list[str]:
    """Snapshot returns as rows of `per_row` columns (steps in thousands)."""
    lines: list[str] = []
    for i in range(0, len(snapshots), per_row):
        row = snapshots[i:i + per_row]
        lines += ["| step | " + " | ".join(f"{s['step'] / 1000:g}k" for s in row) + " |",
                  "|---|" + "---:|" * len(row),
                  "| return | " + " | ".join(f"{s['eval_return']:.0f}" for s in row) + " |", ""]
    return lines


def earlier_section(folder: Path) -> str:
    """A superseded measurement kept beside the data (its summary.json and collect.log)."""
    summary = json.loads((folder / "summary.json").read_text())
    total, loads = total_seconds(summary, folder / "collect.log")
    rows = [f"| {name} | {d['n_transitions']:,} | {d['source_policy_return']:.1f} | "
            f"{d['source_policy_score']:.1f} |" for name, d in summary["datasets"].items()]
    return "\n".join([
        f"### Earlier measurement: {summary['sac_steps']:,} SAC steps (`{folder.name}`)",
        "",
        f"Same command before the preset grew to its present size (and before the acting and "
        f"update key streams were separated): {total / 60:.1f} min in all "
        f"(SAC {summary['seconds']['sac_train_this_session'] / 60:.1f} min, load {loads}); "
        f"expert snapshot evaluation return {summary['expert_eval_return']:.1f}.",
        "",
        "| dataset | transitions | return | score |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        *curve_table(summary["snapshots"]),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["hopper=/tmp/sac-hopper"],
                        help="robot=DIR for each `dualrl collect sac --out DIR`; a DIR's "
                             "superseded-* folders are reported as earlier measurements")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs/results/collect_sac.md")
    args = parser.parse_args()
    runs = [(robot, Path(folder), read_summary(Path(folder), robot)) for robot, folder in
            (item.split("=", 1) for item in args.runs)]
    preset = {summary["preset"] for _, _, summary in runs}
    parts = [f"# SAC behaviour datasets, preset {' / '.join(sorted(preset))}", "",
             "Generated by `scripts/collect_sac_timing.py` from each output folder; the "
             "commands' wall clocks and load averages are the lines `collect.log` gets from "
             "`scripts/collect_sac_timed.sh`. Budget: "
             f"{BUDGET_MINUTES} minutes per robot on 2 CPU cores.", "", *overview(runs)]
    for robot, data_dir, summary in runs:
        parts += ["", render(data_dir, robot, summary)]
        for folder in sorted(p for p in data_dir.glob("superseded-*") if p.is_dir()):
            parts += ["", earlier_section(folder)]
    findings = Path(__file__).with_name("collect_sac_findings.md")
    if findings.exists():
        parts += ["", findings.read_text().strip()]
    text = "\n".join(parts) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
