"""Q ensembles (vmapped, one compiled network for all members) and state-value nets."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dualrl.nn.mlp import MLP


class QEnsemble(nn.Module):
    """`num_qs` independent Q(s, a) heads evaluated in one vmapped call -> (num_qs, B)."""

    num_qs: int = 2
    hidden: Sequence[int] = (256, 256)
    layer_norm: bool = False
    orthogonal: bool = False  # the SAC-family references' initialisation (see MLP)
    activation: str = "relu"  # Diff-QL / DACER: "mish"

    @nn.compact
    def __call__(self, obs: jax.Array, act: jax.Array) -> jax.Array:
        ensemble = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_qs,
        )
        x = jnp.concatenate([obs, act], axis=-1)
        return ensemble(hidden=self.hidden, out_dim=1, layer_norm=self.layer_norm,
                        orthogonal=self.orthogonal, activation=self.activation)(x)[..., 0]


class ValueNet(nn.Module):
    hidden: Sequence[int] = (256, 256)
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return MLP(hidden=self.hidden, out_dim=1, layer_norm=self.layer_norm)(obs)[..., 0]
