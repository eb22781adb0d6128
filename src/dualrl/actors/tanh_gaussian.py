"""SAC's tanh-squashed Gaussian actor and its entropy temperature (Haarnoja et al. 2018), the
actor of Cal-QL and SO2 (SPEC §7).

a = tanh(u), u ~ N(μ(s), σ(s)²); the log density carries the change of variables
−Σ log(1 − tanh² u), written as 2 (log 2 − u − softplus(−2u)) so it stays finite where
tanh saturates. Features and the linear mean head are kept apart, as in GaussianActor, so the
shared last-layer Laplace module can treat the head as a linear model.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dualrl.actors.gaussian import LOG_STD_MAX, LOG_STD_MIN, gaussian_log_prob
from dualrl.nn.mlp import MLP, orthogonal_init


class TanhGaussianActor(nn.Module):
    """(μ(s), log σ(s)) of the pre-squash Gaussian; `sample_tanh_gaussian` draws from it."""

    act_dim: int
    hidden: Sequence[int] = (256, 256)
    orthogonal: bool = True

    def setup(self) -> None:
        self.trunk = MLP(hidden=self.hidden, orthogonal=self.orthogonal)
        head_init = (orthogonal_init(1e-2) if self.orthogonal
                     else nn.linear.default_kernel_init)
        self.head = nn.Dense(self.act_dim, kernel_init=head_init)
        self.log_std_head = nn.Dense(self.act_dim, kernel_init=head_init)

    def features(self, obs: jax.Array) -> jax.Array:
        return self.trunk(obs)

    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, log_std, _ = self.parts(obs)
        return mean, log_std

    def parts(self, obs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(μ, log σ, φ) from one trunk pass: what the Laplace module and acting need."""
        phi = self.features(obs)
        log_std = jnp.clip(self.log_std_head(phi), LOG_STD_MIN, LOG_STD_MAX)
        return self.head(phi), log_std, phi


def tanh_gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log π(tanh u) for a pre-squash sample u, summed over the action axis."""
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return gaussian_log_prob(u, mean, log_std) - log_det.sum(axis=-1)


def sample_tanh_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array,
                         num_samples: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Reparameterised squashed samples and their log densities: (..., da), (...); with
    `num_samples` N the draws get an axis after the batch: (B, N, da), (B, N)."""
    if num_samples is not None:
        mean, log_std = mean[:, None], log_std[:, None]
        shape = mean.shape[:1] + (num_samples,) + mean.shape[2:]
    else:
        shape = mean.shape
    u = mean + jnp.exp(log_std) * jax.random.normal(key, shape)
    return jnp.tanh(u), tanh_gaussian_log_prob(u, mean, log_std)


def temperature_loss(log_alpha: jax.Array, log_pi: jax.Array,
                     target_entropy: float) -> jax.Array:
    """SAC's automatic temperature: α rises while the policy's entropy −E log π is below the
    target (−|A| in the references) and falls above it."""
    return -(jnp.exp(log_alpha) * jax.lax.stop_gradient(log_pi + target_entropy)).mean()
