"""Plain MLPs used by critics and Gaussian actors."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "mish": lambda x: x * jnp.tanh(nn.softplus(x)),
    "gelu": nn.gelu,
    "tanh": jnp.tanh,
}


class MLP(nn.Module):
    """Hidden layers with an activation after each; `out_dim=None` returns the last features."""

    hidden: Sequence[int] = (256, 256)
    out_dim: int | None = None
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = nn.Dense(width)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        if self.out_dim is not None:
            x = nn.Dense(self.out_dim)(x)
        return x
