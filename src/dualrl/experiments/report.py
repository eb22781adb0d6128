"""Results tables from run directories: mean ± standard error over seeds of the summary
metrics, grouped by (task, algo). `python -m dualrl.experiments.report RUN_DIR... --out F.md`
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

METRICS = ("offline_score", "online_mean_score", "final_score", "best_score")


def find_runs(paths: list[str]) -> list[dict[str, Any]]:
    """Every summary.json under the given folders, with its config beside it."""
    runs = []
    for root in paths:
        for summary in sorted(Path(root).rglob("summary.json")):
            record = json.loads(summary.read_text())
            config_file = summary.parent / "config.json"
            record["config"] = json.loads(config_file.read_text()) if config_file.exists() else {}
            record["run_dir"] = str(summary.parent)
            runs.append(record)
    return runs


def mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def run_label(run: dict[str, Any]) -> str:
    """A sweep's method label, else the algorithm's name."""
    return run.get("label") or run["algo"]


def paired(runs: list[dict[str, Any]], task: str, a: str, b: str,
           metric: str) -> tuple[float, float, int] | None:
    """Mean ± s.e. of `a − b` over the seeds both methods ran on `task` (same seeds = same
    environment seeds and, where the data is generated, the same data), and how many seeds."""
    by = {(run_label(r), r["seed"]): r[metric] for r in runs if r["task"] == task}
    seeds = sorted(s for (lab, s) in by if lab == a and (b, s) in by)
    if not seeds:
        return None
    mean, se = mean_se([by[(a, s)] - by[(b, s)] for s in seeds])
    return mean, se, len(seeds)


def _sort_key(order: list[str] | None):
    """Groups by task, then in the given method order (unlisted methods after, by name)."""
    rank = {m: i for i, m in enumerate(order or [])}
    return lambda item: (item[0][0], rank.get(item[0][1], len(rank)), item[0][1])


def table(runs: list[dict[str, Any]], order: list[str] | None = None) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[(r["task"], run_label(r))].append(r)
    head = "| task | method | seeds | " + " | ".join(METRICS) + " | budget (offline + online) |"
    lines = [head, "|" + "---|" * (len(METRICS) + 4)]
    for (task, algo), rs in sorted(groups.items(), key=_sort_key(order)):
        cells = []
        for m in METRICS:
            vals = [r[m] for r in rs if r.get(m) is not None]
            if not vals:
                cells.append("-")
                continue
            mean, se = mean_se(vals)
            cells.append(f"{mean:.1f}" + ("" if math.isnan(se) else f" ± {se:.1f}"))
        budget = f"{rs[0].get('offline_steps')} + {rs[0].get('online_steps')}"
        lines.append(f"| {task} | {algo} | {len(rs)} | " + " | ".join(cells) + f" | {budget} |")
    return "\n".join(lines)


DIAGNOSTICS = ("epistemic_std", "aleatoric_std", "shift_distance", "action_std", "refit_lambda")


# why a run learns or not (issue 12), logged by every method; dp_* only where a task has DP
LEARNING = ("explore_changed", "epistemic_changed", "shift_changed", "online_share",
            "train_success", "dp_success_policy", "dp_success_greedy_q")


def diagnostics_table(runs: list[dict[str, Any]], order: list[str] | None = None,
                      keys: tuple[str, ...] = DIAGNOSTICS) -> str:
    """Acting diagnostics averaged over every online evaluation of every seed."""
    groups: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list))
    for r in runs:
        metrics = Path(r["run_dir"]) / "metrics.jsonl"
        for line in metrics.read_text().splitlines():
            rec = json.loads(line)
            if rec["phase"] == "online":
                for k in keys:
                    if rec.get(k) is not None:
                        groups[(r["task"], run_label(r))][k].append(rec[k])
    if not groups:
        return ""
    keys_asked, keys = keys, tuple(k for k in keys if any(k in v for v in groups.values()))
    lines = ["| task | method | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 2)]
    for (task, label), vals in sorted(groups.items(), key=_sort_key(order)):
        if keys_asked is DIAGNOSTICS and not any(vals.get(k) for k in DIAGNOSTICS[:4]):
            continue  # a method that logs no acting stats
        cells = [f"{sum(vals[k]) / len(vals[k]):.3f}" if vals.get(k) else "-" for k in keys]
        lines.append(f"| {task} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


GENERATED = "<!-- table -->"


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of already formatted cells, one line per row, ending in a newline."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def write_generated_section(page: str | Path, text: str) -> None:
    """Replace what follows the GENERATED marker of a results page with `text`, keeping the
    hand-written findings above it (a new page gets the marker and `text` only)."""
    page = Path(page)
    intro = page.read_text().split(GENERATED)[0] if page.exists() else ""
    page.write_text(intro + GENERATED + "\n" + text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dualrl.experiments.report")
    parser.add_argument("runs", nargs="+", help="run directories (searched recursively)")
    parser.add_argument("--out", default=None, help="Markdown file to write")
    parser.add_argument("--title", default="Results")
    parser.add_argument("--plot", default=None, help="also write learning curves (PNG) here")
    parser.add_argument("--note", default="", help="a paragraph (e.g. the budget) to include")
    args = parser.parse_args(argv)
    runs = find_runs(args.runs)
    if not runs:
        raise SystemExit(f"no summary.json under {' '.join(args.runs)}")
    tasks = sorted({r["task"] for r in runs})
    pngs = {}
    if args.plot:  # one PNG per task: NAME.png, or NAME_<task>.png for several tasks
        png = Path(args.plot)
        pngs = {t: png if len(tasks) == 1 else png.with_name(f"{png.stem}_{t}{png.suffix}")
                for t in tasks}
    text = "\n".join([
        f"# {args.title}", "",
        "Mean ± standard error over seeds. offline_score: last offline evaluation, run in the "
        "online environment; online_mean_score: mean of the online evaluations (the paper's "
        "metric); final_score: last evaluation; best_score: best evaluation.", "",
        *([args.note, ""] if args.note else []),
        table(runs), "",
        *(["Online acting diagnostics (mean over the online evaluations of all seeds):", "",
           diag, ""] if (diag := diagnostics_table(runs)) else []),
        *(["Learning diagnostics (mean over the online evaluations of all seeds; README: "
           "\"Diagnostics in every evaluation record\"):", "", learn, ""]
          if (learn := diagnostics_table(runs, keys=LEARNING)) else []),
        *[f"![learning curves, {t}]({p.name})\n" for t, p in pngs.items()],
        "Generated by `python -m dualrl.experiments.report` from: "
        + ", ".join(sorted({r["run_dir"] for r in runs})), "",
    ])
    if pngs:
        from dualrl.experiments.plots import plot_learning_curves

        for task, png in pngs.items():
            dirs = [r["run_dir"] for r in runs if r["task"] == task]
            plot_learning_curves(dirs, png, task, offline_steps=runs[0].get("offline_steps"))
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
