"""Cal-QL's critic pieces (Nakamoto et al. 2023; SPEC §7): Monte-Carlo returns-to-go of the
offline data and the calibrated CQL regulariser.

Pure functions; an algorithm file wires them into an update. Calibration bounds the Q values
of the policy's sampled actions below by V^μ(s), the discounted return-to-go of the behaviour
policy from s, so the conservative push-down cannot drive Q under a value the data already
achieves: this is what lets Cal-QL fine-tune online without the initial dip of CQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def returns_to_go(rewards: np.ndarray, episodes: Sequence[slice], gamma: float,
                  sparse_reward_min: float | None = None) -> np.ndarray:
    """Discounted return-to-go G_t = r_t + γ G_{t+1} within each episode (0 after its last row).

    `episodes` are the episodes' row slices in order, as `Dataset.episode_slices()` gives them;
    they must tile the rows. For sparse-reward tasks pass `sparse_reward_min`: an episode whose
    rewards all equal it never succeeded, and its rows get r_min / (1 − γ), the value of
    failing forever, as the reference implementations do (otherwise a truncated failure would
    look better than it is).
    """
    rewards = np.asarray(rewards, np.float64)
    if rewards.ndim != 1:
        raise ValueError(f"rewards must be one-dimensional, got shape {rewards.shape}")
    starts, stops = [sl.start for sl in episodes], [sl.stop for sl in episodes]
    if not episodes or starts != [0, *stops[:-1]] or stops[-1] != len(rewards):
        shown = list(zip(starts, stops, strict=True))
        raise ValueError(f"episode slices must tile the {len(rewards)} rows in order, got "
                         f"(start, stop) {shown[:3]}{' ...' if len(shown) > 3 else ''}")
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if sparse_reward_min is not None and gamma == 1.0:
        raise ValueError("sparse_reward_min needs gamma < 1 (r_min / (1 − γ) is infinite)")
    out = np.zeros_like(rewards)
    for start, end in zip(starts, stops, strict=True):
        episode = rewards[start:end]
        if sparse_reward_min is not None and np.all(episode == sparse_reward_min):
            out[start:end] = sparse_reward_min / (1.0 - gamma)
            continue
        running = 0.0
        for t in range(end - start - 1, -1, -1):
            running = episode[t] + gamma * running
            out[start + t] = running
    return out.astype(np.float32)


def cql_difference(q_data: jax.Array, q_random: jax.Array, q_policy: jax.Array,
                   log_pi_policy: jax.Array, q_next_policy: jax.Array,
                   log_pi_next_policy: jax.Array, act_dim: int, temperature: float = 1.0,
                   mc_lower_bound: jax.Array | None = None,
                   clip_min: float = -np.inf, clip_max: float = np.inf,
                   ) -> tuple[jax.Array, jax.Array]:
    """The CQL(H) gap per Q head: logsumexp over sampled actions − Q(s, a_data), importance
    sampled, with Cal-QL's calibration.

    Shapes: `q_data` (H, B); `q_random`, `q_policy`, `q_next_policy` (H, B, N) — Q at N
    uniform actions in [−1, 1]^A, at N actions of π(·|s) and at N actions of π(·|s') (both
    evaluated at s); `log_pi_*` (B, N) their log densities. Importance sampling subtracts each
    proposal's log density (uniform: A · log ½). `mc_lower_bound` (B,) is V^μ(s): the policy
    samples' Q values are raised to it before the logsumexp (Cal-QL); None gives plain CQL.
    Returns (gap (H,), fraction of policy-sample Q values the bound raised).
    """
    if mc_lower_bound is not None:
        bound = mc_lower_bound[None, :, None]
        raised = jnp.mean(jnp.concatenate([q_policy < bound, q_next_policy < bound], -1))
        q_policy = jnp.maximum(q_policy, bound)
        q_next_policy = jnp.maximum(q_next_policy, bound)
    else:
        raised = jnp.zeros(())
    uniform_log_density = act_dim * jnp.log(0.5)
    stacked = jnp.concatenate([
        q_random - uniform_log_density,
        q_next_policy - jax.lax.stop_gradient(log_pi_next_policy)[None],
        q_policy - jax.lax.stop_gradient(log_pi_policy)[None],
    ], axis=-1)
    soft_max = temperature * jax.nn.logsumexp(stacked / temperature, axis=-1)
    gap = jnp.clip(soft_max - q_data, clip_min, clip_max)
    return gap.mean(axis=-1), raised
