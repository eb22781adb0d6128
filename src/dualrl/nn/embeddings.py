"""Sinusoidal embeddings of the diffusion time t ∈ [0, 1]."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sinusoidal_embedding(t: jax.Array, dim: int, scale: float = 1000.0) -> jax.Array:
    """(B,) -> (B, dim) sin/cos features at geometric frequencies (Transformer style)."""
    half = dim // 2
    freqs = jnp.exp(-jnp.log(10_000.0) * jnp.arange(half) / max(half - 1, 1))
    args = (t * scale)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
