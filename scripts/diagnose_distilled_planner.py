"""Diagnostic for docs/results/planner_baselines.md: why does D-Diffuser score below Diffuser
when its one-step student matches its teacher (the run's logged distill_policy_rel_mse)?

    python scripts/diagnose_distilled_planner.py COPY_OF_RUN_DIR [EPISODE_SEED ...]

On a finished D-Diffuser run's final weights, the online environment is played (the run's
own evaluator, fresh noise at every step) with six ways of drawing the `candidates` plans
per state, each followed by the same selection (the first action of the plan the learned
return model J ranks highest):

- guided ancestral, K = `steps` (what Diffuser executes),
- unguided ancestral, K = `steps` (the guidance's share),
- unguided DDIM with the teacher's step count (what the student is distilled to match),
- the one-step student (what D-Diffuser executes),
- unguided DDIM with 2 and with 1 step from the teacher's weights (references: how far a
  coarser sampler of the same model falls).

Printed per mode: score, success rate and the mean J of the chosen plans. First, the
fidelity of each sampler's first action a_0 to the teacher's DDIM a_0 from the same noise
(relative MSE: MSE over the teacher's variance) on 2000 offline and the last 2000 online
states. (The run logs `distill_policy_rel_mse` of the LAST round only: a 1-step student
against the 2-step student it was distilled from, not against the K-step teacher.) Pass a
copy: resuming takes the run directory's lock."""

import itertools
import sys

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.diffusion.distill import fidelity
from dualrl.o2o.loop import O2ORun


def main(run_dir: str, episode_seeds: list[int]) -> None:
    run = O2ORun.resume(run_dir)
    agent, view = run.agent, run.agent.acting_view(run.agent_state)
    planner, cfg = agent.planner, agent.config
    assert cfg.distill, f"{run_dir}: not a D-Diffuser run (--distill)"

    def draw(mode: str, obs: jax.Array, key: jax.Array) -> jax.Array:
        k_noise, k_steps = jax.random.split(key)
        noise = planner.noise(k_noise, obs.shape[0])
        params = view.planner.ema_params
        if mode == "guided ancestral":
            return agent.guided_plans(view, obs, key)
        if mode == "unguided ancestral":
            return planner.sample(params, obs, noise, key=k_steps, steps=cfg.steps,
                                  sampler="ddpm")
        if mode.startswith("unguided DDIM"):
            steps = {"unguided DDIM, 2 steps": 2, "unguided DDIM, 1 step": 1}.get(
                mode, planner.config.teacher_steps)
            return planner.sample(params, obs, noise, steps=steps)
        return agent.student_plans(view, obs, key)

    teacher_steps, params = planner.config.teacher_steps, view.planner.ema_params
    buf = run.buffer_state
    n_off, size = int(buf.n_offline), int(buf.size)
    for where, rows in (("offline", np.linspace(0, n_off - 1, 2000).astype(int)),
                        ("online", np.arange(n_off, size)[-2000:])):
        obs = jnp.asarray(np.asarray(buf.observations[rows]))
        act = jnp.asarray(np.asarray(buf.actions[rows]))
        samplers = {f"DDIM {k}": (params, k) for k in (teacher_steps // 2, 2, 1)}
        samplers["student"] = (view.student_params, 1)
        print(f"{run_dir} a_0 relative MSE to the teacher's DDIM {teacher_steps}, {where} "
              "states: " + ", ".join(
                  f"{name} " + format(fidelity(planner, p, k, params, teacher_steps, obs, act,
                                               jax.random.PRNGKey(3))["policy_rel_mse"], ".3f")
                  for name, (p, k) in samplers.items()), flush=True)

    modes = ("guided ancestral", "unguided ancestral", "unguided DDIM (teacher)", "student",
             "unguided DDIM, 2 steps", "unguided DDIM, 1 step")
    for mode in modes:
        chosen_values: list[float] = []

        @jax.jit
        def act(obs, key, mode=mode):
            plans = draw(mode, jnp.repeat(obs, cfg.candidates, axis=0), key)
            action, scores = agent.select_plan(view, plans, obs.shape[0])
            return action, scores.max(axis=-1)

        counter = itertools.count()

        def policy(obs, act=act, chosen_values=chosen_values, counter=counter):
            norm = jnp.asarray(run.normalizer(np.asarray(obs, np.float32)))
            action, value = act(norm, jax.random.fold_in(run.key, 20_000 + next(counter)))
            chosen_values.append(float(np.mean(value)))
            return np.asarray(action)

        results = [run._evaluator("online").run(policy, seed) for seed in episode_seeds]
        score = np.mean([r["score"] for r in results])
        success = np.mean([r["success_rate"] for r in results])
        print(f"{run_dir} {mode}: score {score:.1f}, success {success:.0%}, chosen plans' J "
              f"{np.mean(chosen_values):.2f} ({len(episode_seeds)} × "
              f"{run.loop.eval_episodes} episodes)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]] or [11, 22])
