"""Gaussian MLP actor with its penultimate features and linear head kept apart.

The split lets the last-layer Laplace fit (uq/) treat the head W φ(s) + b as a linear
model on fixed features, for IQL w LA as for DUAL.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dualrl.nn.mlp import MLP

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class GaussianActor(nn.Module):
    """π(a|s) = N(tanh(W φ(s) + b), σ²) with σ state-independent (CORL's IQL) or learned."""

    act_dim: int
    hidden: Sequence[int] = (256, 256)
    state_dependent_std: bool = False
    tanh_mean: bool = True

    def setup(self) -> None:
        self.trunk = MLP(hidden=self.hidden)
        self.head = nn.Dense(self.act_dim)
        if self.state_dependent_std:
            self.log_std_head = nn.Dense(self.act_dim)
        else:
            self.log_std_param = self.param("log_std", nn.initializers.zeros, (self.act_dim,))

    def features(self, obs: jax.Array) -> jax.Array:
        """Penultimate features φ(s)."""
        return self.trunk(obs)

    def mean_from_features(self, phi: jax.Array) -> jax.Array:
        mean = self.head(phi)
        return jnp.tanh(mean) if self.tanh_mean else mean

    def log_std_from_features(self, phi: jax.Array) -> jax.Array:
        if self.state_dependent_std:
            log_std = self.log_std_head(phi)
        else:
            log_std = jnp.broadcast_to(self.log_std_param, phi.shape[:-1] + (self.act_dim,))
        return jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)

    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        phi = self.features(obs)
        return self.mean_from_features(phi), self.log_std_from_features(phi)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Log density of a diagonal Gaussian, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def sample_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array,
                    num_samples: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Reparameterised draws of N(mean, σ²) and their log densities, shaped as
    `sample_tanh_gaussian`'s: (..., da), (...), or (B, N, da), (B, N) with `num_samples`."""
    if num_samples is not None:
        mean, log_std = mean[:, None], log_std[:, None]
        shape = mean.shape[:1] + (num_samples,) + mean.shape[2:]
    else:
        shape = mean.shape
    a = mean + jnp.exp(log_std) * jax.random.normal(key, shape)
    return a, gaussian_log_prob(a, mean, log_std)
