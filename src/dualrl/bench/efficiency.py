"""The efficiency study (paper Fig. 2a/2b, Tab. 4's latency column): `dualrl bench efficiency
--task TASK`.

Latency: every method's exploring action at batch 1 exactly as the O2O loop calls it (one
jitted call on the agent's acting view, the step's key folded in; DUAL with its shift
context), built with the TASK's preset (its networks, horizon, candidates) and the task's
observation / action sizes — randomly initialised weights: the cost of a call does not depend
on their values. Distilled methods are timed as they act online (their one-step student);
all calls are timed round-robin, side by side (`bench.latency.time_interleaved`).

Return: read, not trained here — each method's runs under `--runs DIR [DIR ...]` (sweep
folders: DIR/<task>/<method label>/seed*/summary.json), the mean ± s.e. over seeds of the
online mean score (and the final score). DUAL's curve over denoising steps is the labels
`dual` (K = 1, distilled) and `dual-k2 … dual-k16` (the w/o-distillation actor: the K-step
teacher sampler; experiments/efficiency_frozenlake.yaml trains them). Methods without runs
keep their latency row and an empty return.

Output: <out>/efficiency_<task>.json (rows + machine), .md (table) and .png (latency vs
return; DUAL's K curve joined).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.bench.latency import time_interleaved
from dualrl.experiments.report import find_runs, mean_se

# label -> (train flags, denoising network calls per action, description)
METHODS: dict[str, tuple[list[str], int, str]] = {
    "iql": (["--algo", "iql"], 0, "IQL (Gaussian actor, reference)"),
    "dual": (["--algo", "dual"], 1, "DUAL (1-step student, M = 10 Laplace heads)"),
    **{f"dual-k{k}": (["--algo", "dual", "--dual.distill", "false", "--dual.teacher-steps",
                       str(k)], k, f"DUAL w/o distillation, K = {k} teacher steps")
       for k in (2, 4, 8, 16)},
    "diffuser": (["--algo", "diffuser"], 20, "Diffuser (K = 20, guided, 64 plans)"),
    "d-diffuser": (["--algo", "diffuser", "--distill"], 1, "D-Diffuser (1-step, 64 plans)"),
    "diffql": (["--algo", "diffql"], 5, "Diff-QL (T = 5, 50 candidates)"),
    "d-diffql": (["--algo", "diffql", "--distill"], 1, "D-Diff-QL (1-step, 50 candidates)"),
    "dacer": (["--algo", "dacer"], 20, "DACER (T = 20, one sample)"),
    "d-dacer": (["--algo", "dacer", "--distill"], 1, "D-DACER (1-step, one sample)"),
}
DUAL_STEPS = {"dual": 1, "dual-k2": 2, "dual-k4": 4, "dual-k8": 8, "dual-k16": 16}


def acting_call(label: str, task: str, preset: str):
    """A zero-argument call of method `label`'s exploring action at batch 1 on `task`."""
    from dualrl.algos import make_agent
    from dualrl.envs import get_task
    from dualrl.flags import build_train_config
    from dualrl.o2o.agent import ActContext
    from dualrl.o2o.loop import space_dims

    config, _ = build_train_config(["--task", task, "--preset", preset, *METHODS[label][0]],
                                   prog="dualrl bench efficiency")
    spec = get_task(task)
    env = spec.env_factory(spec.resolve(**config.env), "online")
    obs_dim, act_dim = space_dims(env)
    env.close()
    agent = make_agent(config.algo, config.agent)
    state = agent.init(jax.random.PRNGKey(0), obs_dim, act_dim)
    if getattr(config.agent, "distill", False) and hasattr(state, "distillations") \
            and state.distillations is not None:  # as online: the student acts
        state = state.replace(distillations=jnp.ones((), jnp.int32))
    view = agent.acting_view(state)
    obs = jnp.full((1, obs_dim), 0.1)
    ctx = ActContext(obs * 0.9, jnp.zeros((1,), bool),
                     jax.random.normal(jax.random.PRNGKey(3), (1, act_dim)))
    explore = jax.jit(lambda view, obs, key, t, ctx: agent.explore(
        view, obs, jax.random.fold_in(key, t), ctx))
    key, t = jax.random.PRNGKey(2), np.int32(7)
    return lambda: explore(view, obs, key, t, ctx), (obs_dim, act_dim)


def run_returns(runs: list[dict[str, Any]], task: str, label: str) -> dict[str, Any]:
    """Mean ± s.e. over seeds of the runs of `label` on `task` among `runs` (as
    `report.find_runs` lists them: a run found in several folders counts once)."""
    mine = [r for r in runs if r.get("task") == task and r["label"] == label]
    if not mine:
        return {}
    online, online_se = mean_se([float(r["online_mean_score"]) for r in mine])
    final, final_se = mean_se([float(r["final_score"]) for r in mine])
    return dict(online_mean=online, online_se=online_se, final=final, final_se=final_se,
                seeds=len(mine))


def to_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    dual = next((r["ms_median"] for r in rows if r["method"] == "dual"), None)
    lines = [f"# Efficiency study on {meta['task']} (`dualrl bench efficiency`)", "",
             f"{meta['machine']}; JAX {meta['jax_version']} on {meta['backend']}; measured "
             f"{meta['date']}; 1-min load average {meta['load'][0]:.2f} → "
             f"{meta['load'][1]:.2f} (start → end; above the core count other jobs "
             "competed). Acting latency at batch 1 as the O2O loop calls it, each "
             f"method built with the task's `{meta['preset']}` preset (state "
             f"{meta['obs_dim']}-d, action {meta['act_dim']}-d), median (min) ms over calls "
             "made side by side; distilled methods as they act online. Returns: online mean "
             "score (final score) ± s.e. over the seeds found in "
             f"{', '.join(meta['runs']) or '(no run folders given)'}; '-' where no run exists.",
             "", "| method | network calls | ms per action | × DUAL | online mean | final "
             "| seeds |", "|---|---:|---:|---:|---:|---:|---:|"]
    def pm(mean: float, se: float) -> str:
        return f"{mean:.1f}" + ("" if math.isnan(se) else f" ± {se:.1f}")

    for r in rows:
        ratio = f"{r['ms_median'] / dual:.1f}" if dual else "-"
        ret = r.get("return") or {}
        mean = pm(ret["online_mean"], ret["online_se"]) if ret else "-"
        final = pm(ret["final"], ret["final_se"]) if ret else "-"
        lines.append(f"| {METHODS[r['method']][2]} | {r['steps']} | {r['ms_median']:.3f} "
                     f"({r['ms_min']:.3f}) | {ratio} | {mean} | {final} | "
                     f"{ret.get('seeds', 0)} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], meta: dict[str, Any], path: Path) -> None:
    """Latency (log) vs online mean return; DUAL's K = 1 … 16 joined by a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    curve = sorted((DUAL_STEPS[r["method"]], r) for r in rows
                   if r["method"] in DUAL_STEPS and r.get("return"))
    if curve:
        ax.plot([r["ms_median"] for _, r in curve], [r["return"]["online_mean"] for _, r in curve],
                "-o", color="C0", label="DUAL, K = 1 (distilled) … 16")
        for k, r in curve:
            ax.annotate(f"K={k}", (r["ms_median"], r["return"]["online_mean"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    others = [r for r in rows if r["method"] not in DUAL_STEPS and r.get("return")]
    for i, row in enumerate(others):
        ret = row["return"]
        ax.errorbar(row["ms_median"], ret["online_mean"], yerr=np.nan_to_num(ret["online_se"]),
                    fmt="s", color=f"C{(i + 1) % 10}", label=row["method"])
    ax.set_xscale("log")
    ax.set_xlabel("acting latency at batch 1 (ms, log scale)")
    ax.set_ylabel("online mean score")
    ax.set_title(f"{meta['task']}: latency vs return")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dualrl bench efficiency", description=__doc__)
    parser.add_argument("--task", default="frozenlake-shift")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--runs", nargs="*", default=[], help="sweep folders with the runs")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default="docs/results", help="folder for the JSON/MD/PNG")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--render", action="store_true",
                        help="remake the page and figure from the JSON in --out (re-reading "
                             "returns from --runs when given), no timing")
    args = parser.parse_args(argv)
    labels = [m for m in args.methods.split(",") if m]
    unknown = [m for m in labels if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(METHODS)}")
    out = Path(args.out)
    stem = out / f"efficiency_{args.task}"
    runs = [Path(d) for d in args.runs]
    for d in runs:
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: no such run folder")
    if args.render:
        saved = json.loads(stem.with_suffix(".json").read_text())
        rows, meta = saved["rows"], saved["meta"]
        if runs:
            meta["runs"] = [str(d) for d in runs]
    else:
        load_start = os.getloadavg()[0]
        calls, dims = [], (0, 0)
        for label in labels:
            call, dims = acting_call(label, args.task, args.preset)
            calls.append(call)
        timed = time_interleaved(calls, args.budget)
        rows = [dict(method=label, steps=METHODS[label][1], batch=1, ms_median=ms, ms_min=mn,
                     n=n) for label, (ms, mn, n) in zip(labels, timed, strict=True)]
        meta = dict(task=args.task, preset=args.preset, obs_dim=dims[0], act_dim=dims[1],
                    machine=f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPU cores",
                    jax_version=jax.__version__, backend=jax.default_backend(),
                    date=time.strftime("%Y-%m-%d"), runs=[str(d) for d in runs],
                    load=[load_start, os.getloadavg()[0]])
    if runs or not args.render:
        found = find_runs(runs)
        for r in rows:
            r["return"] = run_returns(found, args.task, r["method"])
    out.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1)
                                         + "\n")
    md = to_markdown(rows, meta)
    stem.with_suffix(".md").write_text(md)
    plot(rows, meta, stem.with_suffix(".png"))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
