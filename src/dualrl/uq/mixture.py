"""Acting with an ensemble of sub-policies (Eq. 7) widened by a dynamics-shift term (Eq. 8)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mixture_moments(means: jax.Array, aleatoric_var: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Moments of the equal-weight mixture of N(μ_m, σ²):
    μ* = mean_m μ_m,  σ*² = mean_m (σ² + μ_m²) − μ*²   (means (M, B, K), var (B, K))."""
    mu = means.mean(axis=0)
    var = jnp.mean(aleatoric_var[None] + means**2, axis=0) - mu**2
    return mu, jnp.maximum(var, 0.0)


def shift_distance(predicted: jax.Array, observed: jax.Array) -> jax.Array:
    """d(ŝ_t, s_t): mean squared distance in normalised state space, per batch row."""
    return jnp.mean((predicted - observed) ** 2, axis=-1)
