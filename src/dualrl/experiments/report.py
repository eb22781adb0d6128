"""`dualrl report RUNS_DIR...`: results pages from run directories, with the statistics RL
papers now report.

    dualrl report runs/frozenlake-grid --out docs/results/frozenlake_grid.md --baseline dual

Per task and method: mean ± standard error over seeds of the offline, online-mean and final
scores; their interquartile mean (IQM) with a 95 % stratified-bootstrap confidence interval
(`dualrl.experiments.stats`, as rliable computes it), and over all tasks when there are
several; every method's paired difference to the baseline on the seeds both ran; the
probability that the method improves on the baseline; learning curves with 95 % bootstrap
bands (PNG); the paper's ablation (Tab. 4) and λ_shift (Tab. 5) tables when such runs exist;
the online gain of each run over its own offline score, the cost of a dynamics shift to the
offline policy, the acting and learning diagnostics, and where each run stands at its last
evaluation.
`--pairs A:B` adds paired differences beyond the baseline's; `--save-records DIR` keeps the
runs' small files (config, metrics, summary) so the page can be remade after the run
directories (checkpoints and all) are gone. A page's text above the `<!-- table -->` marker is
kept; what follows is regenerated, byte-identical from the same runs (seeded bootstraps, PNGs
without timestamps).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

METRICS = ("offline_score", "online_mean_score", "final_score", "best_score")


def find_runs(paths: list[str | Path]) -> list[dict[str, Any]]:
    """Every summary.json under the given folders, with its config beside it. A run without
    a sweep label in a `<label>/seed<N>` folder is labelled by that folder's name. The same
    run found twice (a run reused by two sweeps' folders, or its committed record beside the
    run directory; see `run_identity`) counts once, from the first folder given. Two
    different runs of one method, task and seed (a rerun that did not reproduce, or another
    budget) both count, with one warning line naming them: the reader decides which to keep."""
    runs, seen, repeats = [], set(), 0
    first_dir: dict[tuple[Any, ...], str] = {}
    for root in paths:
        for summary in sorted(Path(root).rglob("summary.json")):
            record = json.loads(summary.read_text())
            config_file = summary.parent / "config.json"
            record["config"] = json.loads(config_file.read_text()) if config_file.exists() else {}
            record["run_dir"] = str(summary.parent)
            record["label"] = record.get("label") or folder_label(
                summary.parent, {"seed": record.get("seed"), **record["config"]})
            identity = run_identity(record)
            if identity in seen:
                repeats += 1
                continue
            seen.add(identity)
            slot = (record.get("task"), record["label"], record.get("seed"))
            if slot in first_dir:
                print(f"dualrl: {first_dir[slot]} and {record['run_dir']} are two different runs "
                      f"of {slot[1]} seed {slot[2]} on {slot[0]}; both counted", file=sys.stderr)
            first_dir.setdefault(slot, record["run_dir"])
            runs.append(record)
    if repeats:
        print(f"dualrl: {repeats} run(s) found in more than one of {', '.join(map(str, paths))} "
              "counted once (the first folder's copy)", file=sys.stderr)
    return runs


IDENTITY = ("task", "algo", "seed", "preset", "offline_steps", "online_steps",
            "num_evaluations", *METRICS)


def run_identity(record: dict[str, Any]) -> str:
    """What makes two run directories one data point: the same label, task, algorithm, seed,
    preset and budget, and the same scores to the last digit — a copy of a run, its saved
    record, or a rerun that reproduced it exactly. (Not the config file: fields added by later
    versions and paths such as the stage cache differ between a run and its copy's rerun.)"""
    return json.dumps([record["label"], *(record.get(k) for k in IDENTITY)], default=str)


def folder_label(run_dir: Path, config: dict[str, Any]) -> str | None:
    """The method label of a run: its sweep label, else the `<label>` of a
    `<label>/seed<N>` folder, else None (reports then use the algorithm's name)."""
    if config.get("label"):
        return config["label"]
    if run_dir.name == f"seed{config.get('seed')}":
        return run_dir.parent.name
    return None


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


def _mean_se_cell(values: list[float], digits: int = 1) -> str:
    """"mean ± s.e." (the mean alone for one value, "-" for none)."""
    if not values:
        return "-"
    mean, se = mean_se(values)
    return f"{mean:.{digits}f}" + ("" if math.isnan(se) else f" ± {se:.{digits}f}")


def _difference_cell(mean: float, se: float) -> str:
    """A paired difference, signed: "+mean ± s.e."."""
    return f"{mean:+.1f}" + ("" if math.isnan(se) else f" ± {se:.1f}")


def table(runs: list[dict[str, Any]], order: list[str] | None = None) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[(r["task"], run_label(r))].append(r)
    head = "| task | method | seeds | " + " | ".join(METRICS) + " | budget (offline + online) |"
    lines = [head, "|" + "---|" * (len(METRICS) + 4)]
    for (task, algo), rs in sorted(groups.items(), key=_sort_key(order)):
        cells = [_mean_se_cell([r[m] for r in rs if r.get(m) is not None]) for m in METRICS]
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


def online_gain_table(runs: list[dict[str, Any]], order: list[str] | None = None) -> str:
    """Does the online phase move the policy? Per run the online-mean, final and best scores
    minus its own offline score (both in the online environment), mean ± s.e. over seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r.get("offline_score") is not None and r.get("online_mean_score") is not None:
            groups[(r["task"], run_label(r))].append(r)
    rows = [[task, label, str(len(rs)),
             *[_signed_mean_se_cell([r[k] - r["offline_score"] for r in rs
                                     if r.get(k) is not None])
               for k in ("online_mean_score", "final_score", "best_score")]]
            for (task, label), rs in sorted(groups.items(), key=_sort_key(order))]
    if not rows:
        return ""
    return markdown_table(["task", "method", "seeds", "online mean − offline",
                           "final − offline", "best − offline"], rows)


def shift_cost_table(runs: list[dict[str, Any]], order: list[str] | None = None) -> str:
    """Tasks with a dynamics shift: the last offline policy in the data's environment and
    in the shifted online one (the loop's offline_data_env_score and offline_score)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r.get("offline_data_env_score") is not None:
            groups[(r["task"], run_label(r))].append(r)
    rows = [[task, label, str(len(rs)),
             *[_mean_se_cell([r[k] for r in rs]) for k in ("offline_data_env_score",
                                                           "offline_score")],
             _signed_mean_se_cell([r["offline_score"] - r["offline_data_env_score"]
                                   for r in rs])]
            for (task, label), rs in sorted(groups.items(), key=_sort_key(order))]
    if not rows:
        return ""
    return markdown_table(["task", "method", "seeds", "offline policy, data's environment",
                           "same policy, online environment", "shift cost"], rows)


def _signed_mean_se_cell(values: list[float]) -> str:
    if not values:
        return "-"
    return _difference_cell(*mean_se(values))


# where the run stands when it ends: the policy's exact success and value where the task has
# DP (Frozen-Lake), the critic's value at the start state beside it
AT_THE_END = ("dp_success_policy", "dp_success_greedy_q", "v_init", "dp_v_policy")


def last_evaluation_table(runs: list[dict[str, Any]], order: list[str] | None = None,
                          keys: tuple[str, ...] = AT_THE_END) -> str:
    """Mean ± s.e. over seeds of each run's LAST evaluation record (empty without them)."""
    groups: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list))
    for r in runs:
        lines = (Path(r["run_dir"]) / "metrics.jsonl").read_text().splitlines()
        last = json.loads(lines[-1]) if lines else {}
        for k in keys:
            if last.get(k) is not None:
                groups[(r["task"], run_label(r))][k].append(float(last[k]))
    keys = tuple(k for k in keys if any(k in v for v in groups.values()))
    if not keys:
        return ""
    rows = [[task, label, *[_mean_se_cell(vals.get(k, []), 2 if k.startswith(("v_", "dp_v"))
                                          else 1) for k in keys]]
            for (task, label), vals in sorted(groups.items(), key=_sort_key(order))]
    return markdown_table(["task", "method", *keys], rows)


def save_records(runs: list[dict[str, Any]], dest: str | Path) -> Path:
    """Copy each run's config.json, metrics.jsonl and summary.json (no checkpoints: a few kB
    per run) to DEST/<task>/<label>/seed<N>, so a page can be regenerated from them
    (`dualrl report DEST`) after the run directories are gone. Refuses a DEST that holds
    files other than such records."""
    dest = Path(dest)
    names = ("config.json", "metrics.jsonl", "summary.json")
    if dest.exists():
        foreign = [p for p in dest.rglob("*") if p.is_file() and p.name not in names]
        if foreign:
            raise ValueError(f"{dest}: holds files that are not run records ({foreign[0]})")
    targets = [dest / r["task"] / run_label(r) / f"seed{r['seed']}" for r in runs]
    seen: dict[Path, str] = {}
    for r, target in zip(runs, targets, strict=True):
        if target in seen:
            raise ValueError(f"{dest}: two runs would be saved as {target}: {seen[target]} "
                             f"and {r['run_dir']}")
        seen[target] = r["run_dir"]
    for r, target in zip(runs, targets, strict=True):
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            source = Path(r["run_dir"]) / name
            if source.exists():
                (target / name).write_bytes(source.read_bytes())
    return dest


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


SCORES = (("offline_score", "offline"), ("online_mean_score", "online mean"),
          ("final_score", "final"))


def _by_label(runs: list[dict[str, Any]], task: str | None = None
              ) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if task is None or r["task"] == task:
            groups[run_label(r)].append(r)
    return groups


def _order(labels: list[str] | set[str], first: list[str]) -> list[str]:
    return [x for x in first if x in labels] + sorted(set(labels) - set(first))


def _ci(point: float, lo: float, hi: float) -> str:
    return f"{point:.1f} [{lo:.1f}, {hi:.1f}]"


def iqm_table(runs: list[dict[str, Any]], order: list[str], reps: int = 10_000) -> str:
    """IQM [95 % stratified-bootstrap CI] per task and method, and over all tasks (runs
    resampled within each task) for methods that ran on every task."""
    from dualrl.experiments import stats

    tasks = sorted({r["task"] for r in runs})
    rows = []
    for task in tasks:
        groups = _by_label(runs, task)
        for label in _order(groups, order):
            rs = groups[label]
            cells = [_ci(*stats.bootstrap_ci([[r[m] for r in rs]], reps=reps))
                     for m, _ in SCORES]
            rows.append([task, label, str(len(rs)), *cells])
    if len(tasks) > 1:
        for label in _order({run_label(r) for r in runs}, order):
            per_task = [[r for r in _by_label(runs, t).get(label, [])] for t in tasks]
            if all(per_task):
                cells = [_ci(*stats.bootstrap_ci([[r[m] for r in rs] for rs in per_task],
                                                 reps=reps)) for m, _ in SCORES]
                rows.append([f"all {len(tasks)} tasks", label,
                             str(sum(len(rs) for rs in per_task)), *cells])
    return markdown_table(["task", "method", "runs", *[f"{name}: IQM [95 % CI]"
                                                      for _, name in SCORES]], rows)


def paired_table(runs: list[dict[str, Any]], baseline: str, order: list[str],
                 pairs: list[tuple[str, str]] = ()) -> str:
    """method − baseline, then each (method, reference) of `pairs`, on the seeds both ran
    (mean ± s.e. of the per-seed differences)."""
    rows = []
    for task in sorted({r["task"] for r in runs}):
        comparisons = [(label, baseline) for label in _order(_by_label(runs, task), order)
                       if label != baseline] + list(pairs)
        for label, reference in comparisons:
            cells = []
            for metric, _ in SCORES:
                d = paired(runs, task, label, reference, metric)
                if d is None:
                    break
                mean, se, n = d
                cells.append(_difference_cell(mean, se))
            if cells:
                rows.append([task, f"{label} − {reference}", str(n), *cells])
    if not rows:
        return ""
    return markdown_table(["task", "paired difference", "seeds", *[n for _, n in SCORES]],
                          rows)


def improvement_table(runs: list[dict[str, Any]], baseline: str, order: list[str],
                      reps: int = 10_000) -> str:
    """P(method > baseline) [95 % CI] per task and over the tasks both ran."""
    from dualrl.experiments import stats

    tasks = sorted({r["task"] for r in runs})
    rows = []
    labels = _order({run_label(r) for r in runs} - {baseline}, order)
    for scope in [[t] for t in tasks] + ([tasks] if len(tasks) > 1 else []):
        for label in labels:
            xs, ys = [], []
            for task in scope:
                groups = _by_label(runs, task)
                if label in groups and baseline in groups:
                    xs.append(groups[label])
                    ys.append(groups[baseline])
            if not xs or (len(scope) > 1 and len(xs) < 2):
                continue
            cells = [_prob(*stats.probability_of_improvement_ci(
                [[r[m] for r in rs] for rs in xs], [[r[m] for r in rs] for rs in ys], reps=reps))
                for m, _ in SCORES]
            where = scope[0] if len(scope) == 1 else f"{len(xs)} tasks"
            rows.append([where, f"P({label} > {baseline})", *cells])
    if not rows:
        return ""
    return markdown_table(["task", "probability of improvement",
                           *[f"{n} [95 % CI]" for _, n in SCORES]], rows)


def _prob(point: float, lo: float, hi: float) -> str:
    return f"{point:.2f} [{lo:.2f}, {hi:.2f}]"


IGNORED_CONFIG = {"run", "label", "seed", "agent.stage_cache", "loop.progress"}


def _flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k in ("loop", "agent", "env"):
            out.update(_flat_config(v, f"{key}."))
        else:
            out[key] = v
    return out


def config_difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings where two run configs differ (run id, label, seed, stage cache and
    progress bar aside): {dotted name: (a's, b's)}."""
    fa, fb = _flat_config(a), _flat_config(b)
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb))
            if k not in IGNORED_CONFIG and fa.get(k) != fb.get(k)}


def _variants(runs: list[dict[str, Any]], reference: str) -> dict[str, dict[str, tuple]]:
    """Each DUAL label's settings that differ from the reference label's (same algo)."""
    ref = next((r for r in runs if run_label(r) == reference), None)
    if ref is None or ref.get("algo") != "dual":
        return {}
    out = {}
    for label, rs in _by_label(runs).items():
        if label != reference and rs[0].get("algo") == "dual":
            diff = config_difference(rs[0]["config"], ref["config"])
            diff.pop("task", None)
            diff = {k: v for k, v in diff.items() if not k.startswith("env.")}
            if diff:
                out[label] = diff
    return out




def ablation_table(runs: list[dict[str, Any]], reference: str = "dual") -> str:
    """Tab. 4's shape: the reference DUAL and each DUAL variant (its changed settings named),
    online-mean score per task, mean ± s.e., and the paired difference to the reference."""
    variants = _variants(runs, reference)
    if not variants:
        return ""
    tasks = sorted({r["task"] for r in runs})
    rows = []
    for label in [reference, *sorted(variants)]:
        changed = ", ".join(f"{k.split('.', 1)[-1]} = {v[0]}" for k, v in
                            variants.get(label, {}).items()) or "the reference"
        cells = []
        for task in tasks:
            rs = _by_label(runs, task).get(label, [])
            cell = _mean_se_cell([r["online_mean_score"] for r in rs])
            d = paired(runs, task, label, reference, "online_mean_score") \
                if label != reference else None
            if d is not None:
                cell += f" ({_difference_cell(d[0], d[1])})"
            cells.append(cell)
        rows.append([label, changed, *cells])
    return markdown_table(["method", "changed settings", *tasks], rows)


def shift_weight_table(runs: list[dict[str, Any]], reference: str = "dual") -> str:
    """Tab. 5's shape: online-mean score per task against λ_shift, over the DUAL runs that
    differ from the reference in λ_shift alone (the reference's own λ included)."""
    variants = _variants(runs, reference)
    ref = next((r for r in runs if run_label(r) == reference), None)
    members = {label: diff["agent.shift_weight"][0] for label, diff in variants.items()
               if set(diff) == {"agent.shift_weight"}}
    if not members or ref is None:
        return ""
    members[reference] = ref["config"]["agent"]["shift_weight"]
    weights = sorted(set(members.values()))
    rows = []
    for task in sorted({r["task"] for r in runs}):
        groups = _by_label(runs, task)
        cells = []
        for w in weights:
            values = [r["online_mean_score"] for label, lw in members.items() if lw == w
                      for r in groups.get(label, [])]
            cells.append(_mean_se_cell(values))
        rows.append([task, *cells])
    return markdown_table(["task", *[f"λ_shift = {w:g}" for w in weights]], rows)


def _budget(runs: list[dict[str, Any]]) -> str:
    budgets = sorted({(r.get("offline_steps"), r.get("online_steps")) for r in runs},
                     key=str)
    return "; ".join(f"{a} offline + {b} online steps" for a, b in budgets)


def build_page(runs: list[dict[str, Any]], baseline: str | None, reference: str,
               curves: dict[str, str], reps: int, order: list[str] | None = None,
               pairs: list[tuple[str, str]] = ()) -> str:
    """The generated part of a results page (Markdown)."""
    labels = sorted({run_label(r) for r in runs})
    order = order or []
    if baseline is None:
        baseline = next((x for x in ("dual", "iql") if x in labels), labels[0])
    order = [baseline, *[x for x in order if x != baseline]]
    blocks = [  # paragraphs and tables, one blank line between them
        f"{len(runs)} runs: {len(labels)} methods on {len({r['task'] for r in runs})} task(s); "
        f"{_budget(runs)}. Scores are those of the online environment (offline: the last "
        "offline evaluation; online mean: the mean of the online evaluations, the paper's "
        "metric; final: the last evaluation).",
        "## Mean ± standard error over seeds", table(runs, order),
        "## Interquartile mean, 95 % stratified-bootstrap confidence intervals",
        f"IQM: the mean of the middle 50 % of the runs; CI: percentile, {reps} bootstrap "
        "samples of the runs within each task (seed 0).", iqm_table(runs, order, reps),
    ]
    if paired_text := paired_table(runs, baseline, order, pairs):
        blocks += ["## Paired differences to the baseline",
                   "Per-seed differences on the seeds both methods ran, mean ± s.e."
                   + (" The baseline's rows, then the pairs asked for." if pairs else ""),
                   paired_text]
    if poi := improvement_table(runs, baseline, order, reps):
        blocks += ["## Probability of improvement",
                   "P(X > Y): the chance that a run of X scores above a run of Y (ties count "
                   "one half), averaged over tasks; CI: runs of X and Y resampled "
                   "independently within each task.", poi]
    if gain := online_gain_table(runs, order):
        blocks += ["## Online gain",
                   "Per run, the online scores minus its own offline score (both in the online "
                   "environment), mean ± s.e. over seeds: does the online phase move the "
                   "policy?", gain]
    if shift := shift_cost_table(runs, order):
        blocks += ["## Shift cost",
                   "The last offline policy in the offline data's environment and in the "
                   "shifted online one, mean ± s.e. over seeds (shift cost: online − data's).",
                   shift]
    if ablations := ablation_table(runs, reference):
        blocks += ["## Ablations (Tab. 4 shape)",
                   f"Online-mean score, mean ± s.e. over seeds (paired difference to "
                   f"`{reference}` in brackets).", ablations]
    if lambdas := shift_weight_table(runs, reference):
        blocks += ["## λ_shift (Tab. 5 shape)", "Online-mean score, mean ± s.e. over seeds.",
                   lambdas]
    if diag := diagnostics_table(runs, order):
        blocks += ["## Acting diagnostics", "Mean over the online evaluations of all seeds.",
                   diag]
    if learn := diagnostics_table(runs, order, keys=LEARNING):
        blocks += ["## Learning diagnostics", "Mean over the online evaluations of all seeds.",
                   learn]
    if end := last_evaluation_table(runs, order):
        blocks += ["## At the last evaluation",
                   "Each run's last evaluation record, mean ± s.e. over seeds: the exact (DP) "
                   "success of the actor's and of the critic's greedy policy, V(s0) and the "
                   "DP value of the actor's policy, where the task has them.", end]
    if curves:
        blocks += ["## Learning curves",
                   "Mean over seeds with a 95 % bootstrap band; dashed: the switch to online; "
                   "dotted: the optimum where the task knows it."]
        blocks += [f"![learning curves, {t}]({name})" for t, name in curves.items()]
    return "\n\n".join(b.strip("\n") for b in blocks) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dualrl report",
                                     description="results page from run directories")
    parser.add_argument("runs", nargs="+", help="folders searched for run directories")
    parser.add_argument("--out", default=None,
                        help="Markdown page to write; its text above '<!-- table -->' is kept")
    parser.add_argument("--title", default="Results")
    parser.add_argument("--baseline", default=None,
                        help="method the others are compared with (default: dual, else iql)")
    parser.add_argument("--reference", default="dual",
                        help="the DUAL label the ablation and λ_shift tables vary from")
    parser.add_argument("--order", nargs="*", default=None, help="method order in tables")
    parser.add_argument("--no-plots", action="store_true", help="skip the learning curves")
    parser.add_argument("--reps", type=int, default=10_000, help="bootstrap samples")
    parser.add_argument("--pairs", nargs="*", default=[], metavar="METHOD:REFERENCE",
                        help="more paired differences, e.g. dual-rerun:dual")
    parser.add_argument("--save-records", default=None, metavar="DIR",
                        help="copy the runs' config / metrics / summary files to DIR "
                             "(<task>/<label>/seed<N>) so the page can be remade from them")
    args = parser.parse_args(argv)
    pairs = []
    for item in args.pairs:
        method, sep, reference = item.partition(":")
        if not (sep and method and reference):
            print(f"dualrl report: --pairs {item}: expected METHOD:REFERENCE", file=sys.stderr)
            return 2
        pairs.append((method, reference))
    runs = find_runs(args.runs)
    if not runs:
        print(f"dualrl report: no run directories (summary.json) under {' '.join(args.runs)}",
              file=sys.stderr)
        return 2
    if args.save_records:
        try:
            save_records(runs, args.save_records)
        except (ValueError, OSError) as e:
            print(f"dualrl report: --save-records {e}", file=sys.stderr)
            return 2
    tasks = sorted({r["task"] for r in runs})
    curves = {}
    if args.out and not args.no_plots:
        from dualrl.experiments.plots import plot_learning_curves

        page = Path(args.out)
        for task in tasks:
            png = page.with_name(f"{page.stem}_{task}.png")
            dirs = [r["run_dir"] for r in runs if r["task"] == task]
            steps = {r.get("offline_steps") for r in runs if r["task"] == task}
            plot_learning_curves(dirs, png, task, offline_steps=min(steps, default=None),
                                 band="bootstrap")
            curves[task] = png.name
    text = build_page(runs, args.baseline, args.reference, curves, args.reps, args.order,
                      pairs)
    if args.out:
        page = Path(args.out)
        if not page.exists():  # a new page: its title above the generated part
            page.write_text(f"# {args.title}\n\n")
        write_generated_section(page, text)
        print(f"dualrl report: {len(runs)} runs -> {page}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
