"""Diagnostic for docs/results/planner_baselines.md: does EDIS's generator (the shared
`TrajectoryPlanner` at horizon 1, ancestral sampling) reach one-hot data within a given
number of updates? Data: a one-hot "state" of WIDTH columns and a one-hot 4-wide "action",
independent and uniform (WIDTH · 4 modes); the same loss, network and sampler as EDIS's.

    python scripts/generator_budget_toy.py WIDTH UPDATES [HIDDEN, e.g. 128,128,128]

Prints the loss and, over 2000 unconditional samples, the median of max |state − nearest
one-hot| (0 for perfect samples, ~1 for noise)."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from diagnose_planner_plans import off_one_hot  # scripts/ is on sys.path when run as a script

from dualrl.diffusion.planner import PlannerConfig, TrajectoryPlanner
from dualrl.diffusion.samplers import ddpm_sample


def main(width: int, updates: int, hidden: tuple[int, ...], batch: int = 256,
         samples: int = 2000) -> None:
    planner = TrajectoryPlanner(PlannerConfig(horizon=1, hidden=hidden, teacher_steps=20,
                                              sampler="ddpm"), width, 4)
    unconditional = jnp.zeros((batch, width + 4), bool)

    def update(state, i):
        k_s, k_a, k_loss = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(1), i), 3)
        s = jax.nn.one_hot(jax.random.randint(k_s, (batch,), 0, width), width)
        a = jax.nn.one_hot(jax.random.randint(k_a, (batch,), 0, 4), 4)
        return planner._train_step(state, s[:, None], a[:, None], jnp.ones((batch, 1)), k_loss,
                                   unconditional)

    state, losses = jax.jit(lambda st: jax.lax.scan(update, st, jnp.arange(updates)))(
        planner.init(jax.random.PRNGKey(0)))
    x = ddpm_sample(planner.denoiser(state.ema_params), planner.schedule,
                    planner.config.parameterization, jax.random.PRNGKey(2),
                    planner.noise(jax.random.PRNGKey(3), samples), 20,
                    jnp.zeros(width + 4, bool), jnp.zeros((samples, width + 4)), None, None)
    print(f"width {width}, {updates} updates, hidden {hidden}: loss (last 100) "
          f"{float(losses[-100:].mean()):.3f}; median max |state - one-hot| "
          f"{off_one_hot(np.asarray(x)[:, :width]):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]),
         tuple(int(h) for h in (sys.argv[3] if len(sys.argv) > 3 else "128,128,128").split(",")))
