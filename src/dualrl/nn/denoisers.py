"""Denoiser backbones over a flattened trajectory segment.

Interface shared by every backbone (what samplers, distillation and the Laplace step use):
  __call__(z, t) -> output           z: (B, D) flattened segment, t: (B,) in [0, 1]
  features(z, t) -> φ                penultimate features
  head(φ) -> output                  the LINEAR output layer (W φ + b)
so that a distilled one-step student's last layer can be treated as a Bayesian linear model.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dualrl.nn.embeddings import sinusoidal_embedding
from dualrl.nn.mlp import ACTIVATIONS


class MLPDenoiser(nn.Module):
    """MLP over the flattened segment plus a sinusoidal time embedding (the CPU default)."""

    out_dim: int
    hidden: Sequence[int] = (256, 256, 256)
    time_dim: int = 32
    activation: str = "mish"

    def setup(self) -> None:
        self.time_mlp = [nn.Dense(self.time_dim * 2), nn.Dense(self.time_dim)]
        self.layers = [nn.Dense(w) for w in self.hidden]
        self.output = nn.Dense(self.out_dim)

    def _time_embedding(self, t: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        return self.time_mlp[1](act(self.time_mlp[0](sinusoidal_embedding(t, self.time_dim))))

    def _hidden(self, first_pre_activation: jax.Array) -> jax.Array:
        """The hidden stack from the first layer's pre-activation on."""
        act = ACTIVATIONS[self.activation]
        x = act(first_pre_activation)
        for layer in self.layers[1:]:
            x = act(layer(x))
        return x

    def features(self, z: jax.Array, t: jax.Array) -> jax.Array:
        x = jnp.concatenate([z, self._time_embedding(t)], axis=-1)
        return self._hidden(self.layers[0](x))

    def head(self, phi: jax.Array) -> jax.Array:
        return self.output(phi)

    def __call__(self, z: jax.Array, t: jax.Array) -> jax.Array:
        return self.head(self.features(z, t))

    def prefix_features(self, prefix: jax.Array, t: jax.Array) -> jax.Array:
        """features(z, t) for a z that is `prefix` (B, c) in its first c columns and zero
        elsewhere: the first layer multiplies only those c kernel rows. A one-step model
        called from z = 0 with a short condition inpainted (s_0 of a long segment) costs a
        fraction of a dense pass; the numbers are the same up to summation order."""
        emb = self._time_embedding(t)
        first = self.layers[0].variables["params"]
        kernel, c = first["kernel"], prefix.shape[-1]
        return self._hidden(prefix @ kernel[:c] + emb @ kernel[kernel.shape[0] - self.time_dim:]
                            + first["bias"])

    def head_columns(self, phi: jax.Array, start: int, stop: int) -> jax.Array:
        """Columns [start, stop) of head(φ), computed alone."""
        out = self.output.variables["params"]
        return phi @ out["kernel"][:, start:stop] + out["bias"][start:stop]
