"""Diagnostic for docs/results/planner_baselines.md: what a finished EDIS or DUAL + EDIS run's
last synthetic pool looks like next to the real online rows it is mixed with.

    python scripts/diagnose_edis_pool.py COPY_OF_RUN_DIR [COPY_OF_RUN_DIR ...]

For each run: the share of pool entries outside the per-column [min, max] of the real rows
(states, actions), the same for a pool drawn WITHOUT energy guidance from the same generator
(is the guidance or the generator to blame?), and the advantage weights min(exp(β (Q − V)),
max_weight) the run's critic gives real online rows and pool rows (what the actor's
advantage-weighted loss multiplies) and the TD targets r + γ (1 − done) V(s') it is trained
toward on them, the rows' rewards (mean, share above half the largest
real reward: the sparse rewards' "hits"), and how dynamics-consistent they are: the RMS
residual of s' against a least-squares linear model s' ≈ [s, a, 1] W fitted on the real
online rows (a crude model, but one yardstick for real and generated rows alike). Pass
copies: resuming takes a run directory's lock."""

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
    real_r, real_s2 = np.asarray(buf.rewards[online]), np.asarray(buf.next_observations[online])
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
    def features(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x[:, :ds + da], np.ones((len(x), 1))], axis=1)

    real = np.concatenate([real_s, real_a, real_r[:, None], np.zeros((len(real_r), 1)),
                           real_s2], axis=1)
    w_linear = np.linalg.lstsq(features(real), real_s2, rcond=None)[0]
    hit = 0.5 * real_r.max() if real_r.max() > 0 else np.inf
    for name, x in (("real online rows", real), ("guided pool (used)", pool),
                    ("unguided draw", unguided)):
        r, s2 = x[:, ds + da], x[:, -ds:]
        residual = np.sqrt(((features(x) @ w_linear - s2) ** 2).mean())
        print(f"  {name}: reward mean {r.mean():.3f}, rows above half the largest real reward "
              f"{(r > hit).mean():.1%}; s' residual to the linear model {residual:.3f}")
    cfg = agent.base.config

    for name, x in (("real online rows", real), ("pool rows", pool)):
        s, a = jnp.asarray(x[:, :ds]), jnp.asarray(x[:, ds:ds + da])
        q = agent.base.q_value(state.base, s, a)
        w = np.asarray(advantage_weights(q, agent.base.state_value(state.base, s), cfg.beta,
                                         cfg.max_weight))
        print(f"  advantage weights, {name}: mean {w.mean():.2f}, at the cap "
              f"{cfg.max_weight:g}: {(w >= cfg.max_weight - 1e-3).mean():.1%}")
        # what the critic's TD update asks of these rows: target r + γ (1 − done) V(s') vs Q
        q = np.asarray(q)
        next_v = np.asarray(agent.base.state_value(state.base, jnp.asarray(x[:, -ds:])))
        done = np.clip(x[:, ds + da + 1], 0.0, 1.0)
        target = x[:, ds + da] + cfg.gamma * (1.0 - done) * next_v
        print(f"  critic, {name}: Q mean {q.mean():.2f}, TD target mean {target.mean():.2f}, "
              f"target − Q mean {(target - q).mean():+.3f}")


if __name__ == "__main__":
    for path in sys.argv[1:]:
        main(path)
