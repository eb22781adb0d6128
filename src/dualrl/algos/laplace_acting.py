"""Last-layer Laplace acting, shared by every actor with penultimate features and a linear
head: DUAL's distilled student and IQL's Gaussian MLP ("IQL w LA") alike (SPEC §6).

The agent provides `head_weights(params)` — the (F+1, da) matrix W with the actor's mean
pre-activation u = φ̃ W — and `laplace_inputs(state, obs, act)` — features φ, likelihood
weights w and inverse variances 1/σ² of the actor loss at those rows. This mixin refits the
posterior every `refit_every` online steps on `fit_samples` rows of B (a fixed row count, so
one compile; a smaller B is drawn with replacement and the data term rescaled), keeps the M
draws as deviations from the MAP at fit time, and turns them into M sub-policy means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from dualrl.data.buffer import BufferState, sample_indices
from dualrl.uq.laplace import fit_laplace, with_bias


@dataclass
class LaplaceSettings:
    """The config fields of "<method> w LA" (`--laplace`), for a method's config to inherit."""

    laplace: bool = False
    num_samples: int = 10  # M sub-policies
    refit_every: int = 5_000  # online steps between refits
    fit_samples: int = 100_000  # rows of B per fit
    temperature: float = 1.0


class LaplaceActing:
    config: Any  # needs num_samples, refit_every, fit_samples, temperature

    def laplace_enabled(self) -> bool:
        return True

    def head_weights(self, params: Any) -> jax.Array:
        """[W; b] of the actor's linear layer named "head" (the mean's last layer)."""
        head = params["params"]["head"]
        return jnp.concatenate([head["kernel"], head["bias"][None]], axis=0)

    def laplace_inputs(self, state: Any, obs: jax.Array, act: jax.Array):
        raise NotImplementedError

    def refit(self, state: Any, buffer_state: BufferState, key: jax.Array) -> Any:
        if not self.laplace_enabled():
            return state
        if not hasattr(self, "_refit_jit"):
            self._refit_jit = jax.jit(self._laplace_refit)
        return self._refit_jit(state, buffer_state, key)

    def _laplace_refit(self, state: Any, buffer_state: BufferState, key: jax.Array) -> Any:
        cfg = self.config
        n = cfg.fit_samples
        k_idx, k_draw = jax.random.split(key)
        idx = sample_indices(buffer_state, k_idx, n, None)
        obs, act = buffer_state.observations[idx], buffer_state.actions[idx]
        phi, weights, inv_var = self.laplace_inputs(state, obs, act)
        w_map = self.head_weights(state.actor.params)
        post = fit_laplace(phi, weights, inv_var, w_map, k_draw, cfg.num_samples,
                           cfg.temperature, data_scale=jnp.minimum(buffer_state.size, n) / n)
        return state.replace(deltas=post.samples - w_map[None],
                             prior_precision=post.prior_precision, refits=state.refits + 1)

    def laplace_means(self, state: Any, pre_mean: jax.Array, phi: jax.Array) -> jax.Array:
        """Pre-activation means of the M sub-policies, (M, B, da): the CURRENT head plus the
        posterior deviations drawn at the last refit."""
        return pre_mean[None] + jnp.einsum("bf,mfk->mbk", with_bias(phi), state.deltas)

    def on_phase_start(self, state: Any, phase: str, buffer: Any, buffer_state: BufferState,
                       key: jax.Array) -> Any:
        if phase == "online":
            return self.refit(state, buffer_state, jax.random.fold_in(key, 0))
        return state

    def on_online_step(self, state: Any, step: int, buffer: Any, buffer_state: BufferState,
                       key: jax.Array) -> Any:
        if self.online_step_hook_due(step):
            return self.refit(state, buffer_state, jax.random.fold_in(key, step))
        return state

    def online_step_hook_due(self, step: int) -> bool:
        return self.laplace_enabled() and step % self.config.refit_every == 0

    def diagnostics(self, state: Any) -> dict[str, float]:
        if not self.laplace_enabled():
            return {}
        return {"refit_lambda": float(state.prior_precision), "refits": int(state.refits)}
