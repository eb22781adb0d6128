"""Latency benchmark: milliseconds per action of the policy extracted from the trajectory
planner, for K = 1 (distilled), 2, 4, 8, 16, 20 and 100 DDIM steps, at batch 1 and 256, for
the MLP and the temporal U-Net backbones, beside ONE forward pass of the backbone alone (the
floor). Every timed call is a single jitted function (inpainting + K-step sampling loop; the
policy is the map (s, z) -> a_0, so the noise z is an input drawn outside the timed call, as
the network input z is for the forward pass) with `block_until_ready`; medians and minima
over repeated calls made round-robin (one of each per round).

Output: a JSON list, one object per measurement, with keys method (`forward` | `policy` |
`dual` | `dual-predict`), backbone, steps, batch, ms_median, ms_min, n.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

STEPS = (1, 2, 4, 8, 16, 20, 100)
BATCHES = (1, 256)


def time_interleaved(fns: list[Callable[[], Any]], budget_s: float = 1.0, min_n: int = 3,
                     max_n: int = 300) -> list[tuple[float, float, int]]:
    """(median ms, min ms, n) per zero-argument jitted call, timed round-robin (one call of
    each per round) so that every ratio compares calls made side by side in time."""
    for fn in fns:
        jax.block_until_ready(fn())  # compile + warm up
    times: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    while len(times[0]) < max_n and (
        len(times[0]) < min_n or time.perf_counter() - start < budget_s * len(fns)
    ):
        for fn, ts in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            ts.append((time.perf_counter() - t0) * 1e3)
    return [(float(np.median(ts)), float(np.min(ts)), len(ts)) for ts in times]


def planner_for(backbone: str, horizon: int, obs_dim: int, act_dim: int):
    from dualrl.diffusion.planner import PlannerConfig, TrajectoryPlanner

    planner = TrajectoryPlanner(PlannerConfig(horizon=horizon, backbone=backbone),
                                obs_dim, act_dim)
    return planner, planner.init(jax.random.PRNGKey(0)).ema_params


def dual_calls(horizon: int, obs_dim: int, act_dim: int, batch: int,
               distill: bool = True) -> list[Callable[[], Any]]:
    """DUAL's exploring action (SPEC §6, Eq. 7–8) with M = 10 Laplace weight sets and the
    shift term, called exactly as the O2O loop calls it (action and logged diagnostics): one
    jitted call on the agent's acting view with the step's key folded in inside; one student
    pass, one batched matmul for the M means, the shift distance to the prediction ŝ_t, the
    Gaussian draw from the step's noise. Second call: the prediction ŝ_{t+1} = P̂(s_t, a_t),
    which the loop makes (with the next step's noise) inside its store-and-update call, off
    the acting path; timed here on its own. distill=False: the "w/o distillation" ablation,
    whose actor is the K = 16 step teacher sampler."""
    from dualrl.algos.dual import DUAL, DUALConfig
    from dualrl.o2o.agent import ActContext

    agent = DUAL(DUALConfig(horizon=horizon, planner_hidden=(256, 256, 256), num_samples=10,
                            distill=distill, teacher_steps=16))
    state = agent.init(jax.random.PRNGKey(0), obs_dim, act_dim)
    state = state.replace(deltas=0.01 * jax.random.normal(jax.random.PRNGKey(1),
                                                          state.deltas.shape))
    view = agent.acting_view(state)
    obs = jnp.ones((batch, obs_dim)) * 0.1
    action = jnp.zeros((batch, act_dim))
    ctx = ActContext(obs * 0.9, jnp.zeros((batch,), bool),
                     jax.random.normal(jax.random.PRNGKey(3), (batch, act_dim)))
    explore = jax.jit(lambda view, obs, key, t, ctx: agent.explore(
        view, obs, jax.random.fold_in(key, t), ctx))
    predict = jax.jit(agent.predict_next_obs)
    key, t = jax.random.PRNGKey(2), np.int32(7)
    return [lambda: explore(view, obs, key, t, ctx), lambda: predict(state, obs, action)]


def diffusion_baseline_calls(obs_dim: int, act_dim: int, batch: int,
                             ) -> tuple[list[str], list[int], list[Callable[[], Any]]]:
    """The diffusion-policy baselines' acting as the O2O loop calls it (one jitted call on the
    acting view, the step's key folded in): Diff-QL (T = 5 ancestral steps on 50 candidates
    per state, softmax-Q choice), Diff-QL w LA (the same with the candidates spread over
    M = 10 posterior heads), DACER (one T = 20 sample plus its α noise), and the distilled
    versions (their one-step students, as they act online); beside one forward
    pass of their denoiser on `batch` rows (the floor) and DACER's entropy estimate (200
    noisy actions per state and a 3-component GMM fit each, on `batch` states), which its
    update runs every `entropy_every` steps. Labels, network calls per row, calls."""
    from dualrl.algos.dacer import DACER, DACERConfig
    from dualrl.algos.diffql import DiffQL, DiffQLConfig

    obs = jnp.ones((batch, obs_dim)) * 0.1
    key, t = jax.random.PRNGKey(2), np.int32(7)
    labels, calls_per_row, calls = [], [], []
    for label, agent in (("diffql", DiffQL(DiffQLConfig())),
                         ("diffql-la", DiffQL(DiffQLConfig(laplace=True))),
                         ("d-diffql", DiffQL(DiffQLConfig(distill=True, steps=4))),
                         ("dacer", DACER(DACERConfig())),
                         ("d-dacer", DACER(DACERConfig(distill=True, steps=16)))):
        state = agent.init(jax.random.PRNGKey(0), obs_dim, act_dim)
        if agent.config.distill:  # as online, after the first distillation: the student acts
            state = state.replace(distillations=jnp.ones((), jnp.int32))
        if label == "diffql-la":
            state = state.replace(deltas=0.01 * jax.random.normal(jax.random.PRNGKey(1),
                                                                  state.deltas.shape))
        view = agent.acting_view(state)
        explore = jax.jit(lambda view, obs, key, t, agent=agent: agent.explore(
            view, obs, jax.random.fold_in(key, t)))
        calls.append(lambda view=view, explore=explore: explore(view, obs, key, t))
        labels.append(label)
        calls_per_row.append(1 if agent.config.distill else agent.config.steps)
        if label == "diffql":
            net, params = agent.planner.net, state.actor.params
            z = jnp.zeros((batch, agent.planner.layout.dim))
            forward = jax.jit(lambda p, z, net=net: net.apply(p, z, jnp.ones((z.shape[0],))))
            calls.insert(0, lambda forward=forward, params=params, z=z: forward(params, z))
            labels.insert(0, "diffusion-forward")
            calls_per_row.insert(0, 1)
        if label == "dacer":
            entropy = jax.jit(lambda state, obs, key, agent=agent: agent.policy_entropy(
                state.actor.params, state.log_alpha.params["value"], obs, key))
            calls.append(lambda state=state, entropy=entropy: entropy(state, obs, key))
            labels.append("dacer-entropy")
            calls_per_row.append(agent.config.steps)
    return labels, calls_per_row, calls


def bench_diffusion_baselines(obs_dim: int, act_dim: int, batches: tuple[int, ...],
                              budget_s: float) -> list[dict[str, Any]]:
    rows = []
    for batch in batches:
        labels, ks, calls = diffusion_baseline_calls(obs_dim, act_dim, batch)
        for label, k, (ms, mn, n) in zip(labels, ks, time_interleaved(calls, budget_s),
                                         strict=True):
            rows.append(dict(method=label, backbone="mlp", steps=k, batch=batch,
                             ms_median=ms, ms_min=mn, n=n))
    return rows


BASELINE_LABELS = {
    "diffusion-forward": "one denoiser forward pass (3×256 Mish, [s, a] input)",
    "diffql": "Diff-QL acting (T=5, 50 candidates, softmax-Q)",
    "diffql-la": "Diff-QL w LA acting (the same over M=10 posterior heads)",
    "d-diffql": "D-Diff-QL acting (1-step student, 50 candidates, softmax-Q)",
    "dacer": "DACER acting (T=20, one sample + α noise)",
    "d-dacer": "D-DACER acting (1-step student, one sample + α noise)",
    "dacer-entropy": "DACER entropy estimate (200 actions/state, 3-component GMM; in its update)",
}


def bench_backbone(backbone: str, horizon: int, obs_dim: int, act_dim: int,
                   steps: tuple[int, ...], batches: tuple[int, ...], budget_s: float,
                   dual: bool = True) -> list[dict[str, Any]]:
    planner, params = planner_for(backbone, horizon, obs_dim, act_dim)
    rows = []
    for batch in batches:
        s = jnp.ones((batch, obs_dim)) * 0.1
        z = planner.noise(jax.random.PRNGKey(1), batch)
        t = jnp.ones((batch,))
        forward = jax.jit(lambda p, z, t: planner.net.apply(p, z, t))
        calls = [lambda: forward(params, z, t)]  # noqa: B023
        for k in steps:
            # the policy is the map (s, z) -> a_0; z is drawn outside like any input
            act = jax.jit(lambda p, s, z, k=k: planner.layout.action_slot(
                planner._sample(p, s, z, steps=k)))
            calls.append(lambda act=act: act(params, s, z))  # noqa: B023
        labels = [("forward", 1)] + [("policy", k) for k in steps]
        if backbone == "mlp" and dual:
            calls += dual_calls(horizon, obs_dim, act_dim, batch)
            calls.append(dual_calls(horizon, obs_dim, act_dim, batch, distill=False)[0])
            labels += [("dual", 1), ("dual-predict", 1), ("dual-no-distill", 16)]
        results = time_interleaved(calls, budget_s)
        for (method, k), (ms, mn, n) in zip(labels, results, strict=True):
            rows.append(dict(method=method, backbone=backbone, steps=k, batch=batch,
                             ms_median=ms, ms_min=mn, n=n))
    return rows


def to_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    fwd = {(r["backbone"], r["batch"]): r["ms_median"] for r in rows if r["method"] == "forward"}
    lines = [
        "# Latency (`dualrl bench latency`)",
        "",
        f"{meta['machine']}; JAX {meta['jax_version']} on {meta['backend']}; measured "
        f"{meta['date']}. Planner horizon {meta['horizon']}, state {meta['obs_dim']}-d, action "
        f"{meta['act_dim']}-d; MLP 3×256 Mish, U-Net dim 32 mults (1,2,4,8). Median (min) ms "
        "per call; `ratio` = policy / (K × one forward pass of the same backbone and batch). "
        "DUAL acting (the action's critical path, called as the O2O loop calls it, with its "
        "logged diagnostics): one pass of its 1-step MLP student, M = 10 Laplace weight sets, "
        "the shift distance to ŝ_t, the Gaussian draw; w/o distillation the same with the "
        "K = 16 teacher sampler as the actor (ratio to 16 forwards). "
        "DUAL ŝ prediction: P̂(s_t, a_t) for the "
        "next step's shift term, made (with the next step's standard normal noise) in the "
        "loop's store-and-update call after the action is out; acting + prediction together is "
        "the per-step network cost.",
        "",
        "| method | backbone | K | batch | ms median | ms min | n | ratio to K forwards |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    planner_rows = [r for r in rows if r["method"] not in BASELINE_LABELS]
    baseline_rows = [r for r in rows if r["method"] in BASELINE_LABELS]
    for r in planner_rows:
        floor = fwd[(r["backbone"], r["batch"])] * r["steps"]
        label = "policy (distilled)" if r["method"] == "policy" and r["steps"] == 1 else r["method"]
        if r["method"] == "dual":
            label = "DUAL acting (M=10, shift term)"
        if r["method"] == "dual-predict":
            label = "DUAL ŝ prediction (off the acting path)"
        if r["method"] == "dual-no-distill":
            label = "DUAL w/o distillation acting (K=16 teacher)"
        lines.append(
            f"| {label} | {r['backbone']} | {r['steps']} | {r['batch']} | {r['ms_median']:.3f} "
            f"| {r['ms_min']:.3f} | {r['n']} | {r['ms_median'] / floor:.2f} |"
        )
    if baseline_rows:
        one = {r["batch"]: r["ms_median"] for r in baseline_rows
               if r["method"] == "diffusion-forward"}
        lines += [
            "",
            "Diffusion-policy baselines (issue 15), acting as the O2O loop calls it (one jitted "
            "call on the acting view); `ratio` = ms / one forward pass of their denoiser at the "
            "same batch (the row's batch of states; Diff-QL evaluates 50 candidates per "
            "state, so a batch-256 call runs the denoiser on 12 800 rows).",
            "",
            "| method | K | batch | ms median | ms min | n | ratio to one forward |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *[f"| {BASELINE_LABELS[r['method']]} | {r['steps']} | {r['batch']} | "
              f"{r['ms_median']:.3f} | {r['ms_min']:.3f} | {r['n']} | "
              f"{r['ms_median'] / one[r['batch']]:.1f} |" for r in baseline_rows],
        ]
    lines += ["", "Reproduce: `python benchmarks/latency.py --out docs/results/latency.json "
              "--md docs/results/latency.md`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import platform

    parser = argparse.ArgumentParser(prog="dualrl bench latency", description=__doc__)
    parser.add_argument("--out", default="latency.json")
    parser.add_argument("--md", default=None, help="also write a Markdown table here")
    parser.add_argument("--backbones", default="mlp,unet")
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--obs-dim", type=int, default=11)
    parser.add_argument("--act-dim", type=int, default=3)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--no-dual", action="store_true", help="skip the DUAL acting rows")
    parser.add_argument("--only-baselines", action="store_true",
                        help="only the diffusion-policy baselines' rows, merged into --out's "
                             "JSON (replacing earlier baseline rows)")
    args = parser.parse_args(argv)
    steps = tuple(int(x) for x in args.steps.split(","))
    batches = tuple(int(x) for x in args.batches.split(","))
    rows: list[dict[str, Any]] = []
    if args.only_baselines:
        if Path(args.out).exists():
            rows = [r for r in json.loads(Path(args.out).read_text())
                    if r["method"] not in BASELINE_LABELS]
    else:
        for backbone in args.backbones.split(","):
            rows += bench_backbone(backbone, args.horizon, args.obs_dim, args.act_dim, steps,
                                   batches, args.budget, dual=not args.no_dual)
    rows += bench_diffusion_baselines(args.obs_dim, args.act_dim, batches, args.budget)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    import os

    meta = dict(machine=f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPU cores",
                jax_version=jax.__version__, backend=jax.default_backend(),
                date=time.strftime("%Y-%m-%d"), horizon=args.horizon, obs_dim=args.obs_dim,
                act_dim=args.act_dim)
    md = to_markdown(rows, meta)
    if args.md:
        Path(args.md).write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
