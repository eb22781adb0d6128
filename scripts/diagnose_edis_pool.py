"""Diagnostic for docs/results/planner_baselines.md: what a finished EDIS or DUAL + EDIS run's
last synthetic pool looks like next to the real online rows it is mixed with.

    python scripts/diagnose_edis_pool.py COPY_OF_RUN_DIR [COPY_OF_RUN_DIR ...]

For each run: the share of pool entries outside the per-column [min, max] of the real rows
(states, actions), the same for a pool drawn WITHOUT energy guidance from the same generator
(is the guidance or the generator to blame?), and the advantage weights min(exp(β (Q − V)),
max_weight) the run's critic gives real online rows and pool rows (what the actor's
advantage-weighted loss multiplies). Pass copies: resuming takes a run directory's lock."""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.critics.iql import advantage_weights
from dualrl.o2o.loop import O2ORun


def outside(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of entries outside [low, high] (per column) by more than 0.05."""
    return float(((values < low - 0.05) | (values > high + 0.05)).mean())


def main(run_dir: str) -> None:
    run = O2ORun.resume(run_dir)
    agent, state = run.agent, run.agent_state
    ds, da = agent.obs_dim, agent.act_dim
    buf = run.buffer_state
    online = np.arange(int(buf.n_offline), int(buf.size))[-5000:]
    real_s, real_a = np.asarray(buf.observations[online]), np.asarray(buf.actions[online])
    s_lo, s_hi = real_s.min(0), real_s.max(0)
    a_lo, a_hi = real_a.min(0), real_a.max(0)
    pool = np.asarray(state.pool)[:5000]
    unguided = np.asarray(agent.generate(state.generator.ema_params,
                                         jnp.zeros((5000, agent.dim)), 0,
                                         jax.random.PRNGKey(0)))
    print(f"{run_dir}: pools generated {int(state.pools)}")
    for name, x in (("guided pool (used)", pool), ("unguided draw", unguided)):
        print(f"  {name}: states outside the real rows' range {outside(x[:, :ds], s_lo, s_hi):.1%}"
              f" (values {x[:, :ds].min():.2f}..{x[:, :ds].max():.2f}), actions outside "
              f"{outside(x[:, ds:ds + da], a_lo, a_hi):.1%} (values "
              f"{x[:, ds:ds + da].min():.2f}..{x[:, ds:ds + da].max():.2f})")
    cfg = agent.base.config

    def weights(s, a):
        q = agent.base.q_value(state.base, s, a)
        v = agent.base.state_value(state.base, s)
        return np.asarray(advantage_weights(q, v, cfg.beta, cfg.max_weight))

    for name, s, a in (("real online rows", real_s, real_a),
                       ("pool rows", pool[:, :ds], pool[:, ds:ds + da])):
        w = weights(jnp.asarray(s), jnp.asarray(a))
        print(f"  advantage weights, {name}: mean {w.mean():.2f}, at the cap "
              f"{cfg.max_weight:g}: {(w >= cfg.max_weight - 1e-3).mean():.1%}")


if __name__ == "__main__":
    for path in sys.argv[1:]:
        main(path)
