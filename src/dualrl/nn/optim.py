"""Optimisers shared by the actors."""

from __future__ import annotations

import jax.numpy as jnp
import optax


def actor_adam(lr: float, cosine_steps: int = 0) -> optax.GradientTransformation:
    """Adam at `lr`, or with CORL's cosine annealing when `cosine_steps` > 0:
    lr · (1 + cos(π t / N)) / 2, which reaches 0 at t = N (set N to the offline steps: the
    switch) and, continued as PyTorch's CosineAnnealingLR is, rises again online."""
    if cosine_steps <= 0:
        return optax.adam(lr)

    def schedule(count):
        return lr * 0.5 * (1.0 + jnp.cos(jnp.pi * count / cosine_steps))

    return optax.adam(schedule)
