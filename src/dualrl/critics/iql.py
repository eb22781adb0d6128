"""IQL's critic (Kostrikov et al. 2022): expectile value, TD Q, advantage weights.

Pure loss functions; the algorithm file (algos/iql.py) wires them into an update.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """Asymmetric L2: |τ − 1(diff < 0)| · diff², diff = Q − V."""
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return weight * diff**2


def value_loss(target_q: jax.Array, v: jax.Array, expectile: float) -> jax.Array:
    """V(s) regresses to an upper expectile of min_i Q_target,i(s, a) over dataset actions."""
    return expectile_loss(target_q - v, expectile).mean()


def q_loss(qs: jax.Array, rewards: jax.Array, dones: jax.Array, next_v: jax.Array,
           gamma: float) -> jax.Array:
    """Every Q head regresses to r + γ(1 − done) V(s'); V replaces the max over actions."""
    target = jax.lax.stop_gradient(rewards + gamma * (1.0 - dones) * next_v)
    return ((qs - target[None]) ** 2).mean(axis=1).sum()


def advantage_weights(target_q: jax.Array, v: jax.Array, beta: float,
                      max_weight: float) -> jax.Array:
    """w(s, a) = min(exp(β (Q − V)), max_weight): the AWR weights of SPEC §5."""
    return jnp.minimum(jnp.exp(beta * (target_q - v)), max_weight)
