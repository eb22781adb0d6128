"""Samplers as ONE compiled loop (`lax.scan`), never a Python loop over steps.

`denoise(z, t) -> network output` is any jittable function (params closed over). A K-step
sampler visits the grid t_k = k/K. Inpainting applies before every network call and after
every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.diffusion.conditioning import inpaint
from dualrl.diffusion.parameterization import to_x_eps
from dualrl.diffusion.schedules import Schedule

Denoiser = Callable[[jax.Array, jax.Array], jax.Array]


class Guidance(NamedTuple):
    """Gradient guidance of ancestral sampling (Diffuser's value guidance): before the
    network call of step k, `steps` times z ← z + scale · var_k · ∇_z value(z, t_k) with the
    condition re-inpainted, var_k the step's posterior variance (Diffuser's
    `scale_grad_by_std`); no guidance on the last `stop_last` steps (Diffuser's t_stopgrad).
    `value(z, t)` maps (B, D) noisy samples and (B,) times to (B,) values."""

    value: Callable[[jax.Array, jax.Array], jax.Array]
    scale: float = 0.1
    steps: int = 2
    stop_last: int = 2
    scale_by_variance: bool = True

    def apply(self, z: jax.Array, t, k, steps: int, variance, mask: jax.Array,
              values: jax.Array) -> jax.Array:
        grad_fn = jax.grad(lambda x: self.value(x, jnp.full((x.shape[0],), t)).sum())
        weight = self.scale * (variance if self.scale_by_variance else 1.0)
        weight = jnp.where(k < steps - self.stop_last, weight, 0.0)
        for _ in range(self.steps):  # a handful of steps, unrolled at trace time
            z = inpaint(z + weight * grad_fn(z), mask, values)
        return z


def _grid(schedule: Schedule, steps: int):
    """Times t_k = 1 − k/K and their (α, σ), computed once at trace time (constants)."""
    t = np.linspace(1.0, 0.0, steps + 1)
    alpha, sigma = schedule.alpha_sigma(jnp.asarray(t, jnp.float32))
    return jnp.asarray(t, jnp.float32), alpha, sigma


def predict_x_eps(denoise: Denoiser, kind: str, z: jax.Array, t, alpha, sigma,
                  mask: jax.Array, values: jax.Array, clip: float | None = None):
    """One network call at time t (scalar) with the condition inpainted; `clip` bounds x̂ to
    [−clip, clip] (Diff-QL's clipped denoising: actions live in a box), ε̂ then re-derived
    from the clipped x̂ so that the step stays consistent."""
    z = inpaint(z, mask, values)
    x, eps = to_x_eps(kind, denoise(z, jnp.full((z.shape[0],), t)), z, alpha, sigma)
    if clip is not None:
        x = jnp.clip(x, -clip, clip)
        eps = (z - alpha * x) / jnp.maximum(sigma, 1e-12)
    return inpaint(x, mask, values), eps


def ddim_sample(denoise: Denoiser, schedule: Schedule, kind: str, noise: jax.Array,
                steps: int, mask: jax.Array, values: jax.Array,
                clip: float | None = None) -> jax.Array:
    """K-step deterministic DDIM (η = 0) from z_1 = noise: z_s = α_s x̂ + σ_s ε̂.

    Returns x̂ of the last step; deterministic in the noise. One compiled loop (`lax.scan`,
    partly unrolled); a 1-step sampler is a single network call with no loop at all.
    """
    t, alpha, sigma = _grid(schedule, steps)
    z = inpaint(noise, mask, values)
    if steps == 1:
        x, _ = predict_x_eps(denoise, kind, z, t[0], alpha[0], sigma[0], mask, values, clip)
        return x

    def body(carry, k):
        x, eps = predict_x_eps(denoise, kind, carry[0], t[k], alpha[k], sigma[k], mask, values,
                               clip)
        return (inpaint(alpha[k + 1] * x + sigma[k + 1] * eps, mask, values), x), None

    (_, x), _ = jax.lax.scan(body, (z, z), jnp.arange(steps), unroll=min(steps, 4))
    return x


def ddpm_sample(denoise: Denoiser, schedule: Schedule, kind: str, key: jax.Array,
                noise: jax.Array, steps: int, mask: jax.Array, values: jax.Array,
                clip: float | None = None, guidance: Guidance | None = None) -> jax.Array:
    """Ancestral sampling: z_s ~ q(z_s | z_t, x̂) on the same K-step grid (differentiable in
    the denoiser's parameters: Diff-QL's Q term backpropagates through it); `guidance`
    steers z before each network call (Diffuser)."""
    t, alpha, sigma = _grid(schedule, steps)

    def body(carry, k):
        z = carry[0]
        a_t, s_t, a_s, s_s = alpha[k], sigma[k], alpha[k + 1], sigma[k + 1]
        a_ts = a_t / a_s
        var_ts = s_t**2 - a_ts**2 * s_s**2
        posterior_var = jnp.maximum(var_ts * s_s**2 / s_t**2, 0.0)
        if guidance is not None:
            z = guidance.apply(z, t[k], k, steps, posterior_var, mask, values)
        x, _ = predict_x_eps(denoise, kind, z, t[k], alpha[k], sigma[k], mask, values, clip)
        mean = (a_ts * s_s**2 / s_t**2) * z + (a_s * var_ts / s_t**2) * x
        std = jnp.sqrt(posterior_var)
        z_new = mean + std * jax.random.normal(jax.random.fold_in(key, k), z.shape)
        return (inpaint(z_new, mask, values), x), None

    z0 = inpaint(noise, mask, values)
    (_, x), _ = jax.lax.scan(body, (z0, z0), jnp.arange(steps))
    return x
