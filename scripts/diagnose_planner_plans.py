"""Diagnostic for docs/results/planner_baselines.md: are a finished Diffuser / D-Diffuser run's
plans (its trajectory planner's EMA weights, K ancestral steps) plausible trajectories of a
one-hot task such as Frozen-Lake?

    python scripts/diagnose_planner_plans.py COPY_OF_RUN_DIR [STAGE_CHECKPOINT ...]

A Diffuser / D-Diffuser run is measured with its own planner; a DUAL run with the teacher
planners given as its stage checkpoints (`<stage_cache>/planner-<digest>`, unguided only).

On 2000 offline states, one plan each, unguided and value-guided (as the run plans before
its candidate selection): the median max |a_0 − nearest one-hot| and |s_1 − nearest one-hot|
(0: a clean one-hot, ~1: noise), and how often the plan's s_1 is the state that the data's
own transitions reach from (s_0, argmax a_0) — the dynamics the plan should have learned
(the offline data come from the deterministic slip-0 environment; pairs the data never
took are left out). Pass copies: resuming takes a run directory's lock."""

import sys
from pathlib import Path

import jax
import numpy as np

from dualrl.diffusion.samplers import ddpm_sample
from dualrl.o2o.checkpoint import latest_checkpoint, load_checkpoint
from dualrl.o2o.loop import O2ORun


def off_one_hot(x: np.ndarray) -> float:
    return float(np.median(np.abs(x - np.eye(x.shape[1])[x.argmax(1)]).max(1)))


def main(run_dir: str, stages: list[str]) -> None:
    run = O2ORun.resume(run_dir)
    agent, state = run.agent, run.agent_state
    planner, lay = agent.planner, agent.planner.layout
    if stages:  # DUAL's teachers: unguided, at DUAL's teacher steps
        teachers = [load_checkpoint(latest_checkpoint(Path(p)), planner.init(
            jax.random.PRNGKey(0)))[0] for p in stages]
        sources = [(f"{p} unguided", t.ema_params, None, agent.config.teacher_steps)
                   for p, t in zip(stages, teachers, strict=True)]
    else:
        sources = [(name, state.planner.ema_params, guidance, agent.config.steps)
                   for name, guidance in (("unguided", None),
                                          ("guided", agent.guidance(state.returns.params)))]
    buf = run.buffer_state
    n_off = int(buf.n_offline)
    s = np.asarray(buf.observations[:n_off]).argmax(1)
    a = np.asarray(buf.actions[:n_off]).argmax(1)
    s_next = np.asarray(buf.next_observations[:n_off]).argmax(1)
    reached = {(int(i), int(j)): int(k) for i, j, k in zip(s, a, s_next, strict=True)}
    rows = np.random.default_rng(0).choice(n_off, 2000, replace=False)
    obs = buf.observations[rows]
    k_noise, k_steps = jax.random.split(jax.random.PRNGKey(0))
    noise = planner.noise(k_noise, obs.shape[0])
    print(f"{run_dir}: planner segment {lay.horizon} steps x {lay.width} columns")
    for name, params, guidance, steps in sources:
        plans = np.asarray(ddpm_sample(
            planner.denoiser(params), planner.schedule,
            planner.config.parameterization, k_steps, noise, steps,
            lay.slot_mask(1, 0), lay.condition_values(obs), planner.config.clip_denoised,
            guidance))
        a0, s1 = lay.action_slot(plans), lay.next_state_slot(plans)
        pairs = [(int(i), int(j)) for i, j in zip(s[rows], a0.argmax(1), strict=True)]
        known = [k for k, p in enumerate(pairs) if p in reached]
        consistent = np.mean([s1[k].argmax() == reached[pairs[k]] for k in known])
        print(f"  {name}: median max |a_0 - one-hot| {off_one_hot(a0):.2f}, |s_1 - one-hot| "
              f"{off_one_hot(s1):.2f}; s_1 = the data's next state of (s_0, a_0) in "
              f"{consistent:.1%} of {len(known)} plans")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
