"""What the network predicts: ε, x0 or v = α ε − σ x (Salimans & Ho), and conversions.

Every sampler works with (x̂, ε̂); the parameterisation only says how to get them from the
network output, and what the training target is.
"""

from __future__ import annotations

import jax

PARAMETERIZATIONS = ("eps", "x0", "v")


def target(kind: str, x: jax.Array, eps: jax.Array, alpha, sigma) -> jax.Array:
    if kind == "eps":
        return eps
    if kind == "x0":
        return x
    if kind == "v":
        return alpha * eps - sigma * x
    raise ValueError(f"unknown parameterization '{kind}'; valid: {', '.join(PARAMETERIZATIONS)}")


def to_x_eps(kind: str, pred: jax.Array, z: jax.Array, alpha, sigma) -> tuple[jax.Array, jax.Array]:
    """Network output -> (x̂, ε̂) at the noisy point z = α x + σ ε."""
    if kind == "eps":
        eps = pred
        return (z - sigma * eps) / alpha, eps
    if kind == "x0":
        x = pred
        return x, (z - alpha * x) / sigma
    if kind == "v":
        return alpha * z - sigma * pred, sigma * z + alpha * pred
    raise ValueError(f"unknown parameterization '{kind}'; valid: {', '.join(PARAMETERIZATIONS)}")


def from_x_eps(kind: str, x: jax.Array, eps: jax.Array, alpha, sigma) -> jax.Array:
    """(x, ε) -> what a network of this parameterisation should output."""
    return target(kind, x, eps, alpha, sigma)
