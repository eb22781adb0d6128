"""Diagnostic for docs/results/planner_baselines.md: a finished run's policy evaluated twice
on the same episodes — with the loop's one key per evaluation (as every run is scored) and
with fresh noise at every step (as Diffuser's reference samples) — in the data's and the
online environment.

    python scripts/eval_fresh_noise.py COPY_OF_RUN_DIR

Pass a copy: resuming takes the run directory's lock."""

import itertools
import sys

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.o2o.loop import O2ORun


def main(run_dir: str) -> None:
    run = O2ORun.resume(run_dir)
    view = run.agent.acting_view(run.agent_state)
    counter = itertools.count()

    def fresh(obs):
        norm = jnp.asarray(run.normalizer(np.asarray(obs, np.float32)))
        key = jax.random.fold_in(run.key, 10_000 + next(counter))
        return np.asarray(run._act(view, norm, key, explore=False))

    for phase in ("offline", "online"):
        evaluator = run._evaluator(phase)
        for seed in (11, 22):
            a, b = evaluator.run(run.policy, seed), evaluator.run(fresh, seed)
            print(f"{phase} env, episode seed {seed}: fixed key score {a['score']:.0f} "
                  f"(length {a['episode_length']:.0f}) | fresh key per step score "
                  f"{b['score']:.0f} (length {b['episode_length']:.0f})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
