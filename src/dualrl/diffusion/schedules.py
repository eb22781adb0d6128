"""Noise schedules in continuous time t ∈ [0, 1] (variance preserving: α_t² + σ_t² = 1).

z_t = α_t x + σ_t ε. A K-step sampler visits t = k/K, k = K..0. Continuous time makes
progressive distillation (halving the number of steps) a matter of choosing the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp


@dataclass(frozen=True)
class Schedule:
    kind: str = "cosine"  # "cosine" (Nichol & Dhariwal) or "vp" (linear-β VP SDE)
    cosine_s: float = 0.008
    beta_min: float = 0.1
    beta_max: float = 20.0
    t_max: float = 0.9946  # cosine: keep α_1 > 0 so x can be recovered from v at t = 1

    def alpha_sigma(self, t):
        """(α_t, σ_t) for an array of times."""
        if self.kind == "cosine":
            t = t * self.t_max
            s = self.cosine_s
            f = lambda u: jnp.cos((u + s) / (1 + s) * jnp.pi / 2)  # noqa: E731
            alpha = f(t) / f(0.0)
            alpha = jnp.clip(alpha, 1e-5, 1.0)
            return alpha, jnp.sqrt(1.0 - alpha**2)
        if self.kind == "vp":
            log_alpha = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
            alpha = jnp.exp(log_alpha)
            return alpha, jnp.sqrt(1.0 - alpha**2)
        raise ValueError(f"unknown schedule '{self.kind}'; valid: cosine, vp")

    def log_snr(self, t):
        alpha, sigma = self.alpha_sigma(t)
        return 2.0 * (jnp.log(alpha) - jnp.log(sigma))
