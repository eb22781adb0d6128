"""Acting with an ensemble of sub-policies (Eq. 7) widened by a dynamics-shift term (Eq. 8)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mixture_moments(means: jax.Array, aleatoric_var: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Moments of the equal-weight mixture of N(μ_m, σ²):
    μ* = mean_m μ_m,  σ*² = mean_m (σ² + μ_m²) − μ*² = σ² + mean_m (μ_m − μ*)²
    (means (M, B, K), var (B, K)). The last form is the one computed: the first cancels
    catastrophically in float32 when the means are large next to their spread."""
    mu = means.mean(axis=0)
    var = aleatoric_var + jnp.mean((means - mu[None]) ** 2, axis=0)
    return mu, jnp.maximum(var, 0.0)


def shift_distance(predicted: jax.Array, observed: jax.Array) -> jax.Array:
    """d(ŝ_t, s_t): mean squared distance in normalised state space, per batch row."""
    return jnp.mean((predicted - observed) ** 2, axis=-1)
