"""Conditioning by inpainting with a fixed mask (Diffuser): the conditioned slots of the
network input are overwritten with their known clean values before every network call and
after every denoising step, so they equal the condition exactly."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def inpaint(z: jax.Array, mask: jax.Array, values: jax.Array) -> jax.Array:
    """Where mask is True take `values`, elsewhere keep `z` (broadcasting over the batch)."""
    return jnp.where(mask, values, z)
