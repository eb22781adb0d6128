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
    # orthogonal kernels (gain √2 hidden, 1 output) and zero biases: the SAC-family
    # references' initialisation (Cal-QL, SO2); default: Flax's LeCun normal
    orthogonal: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        hidden_init = (nn.initializers.orthogonal(jnp.sqrt(2.0)) if self.orthogonal
                       else nn.linear.default_kernel_init)
        out_init = (nn.initializers.orthogonal(1.0) if self.orthogonal
                    else nn.linear.default_kernel_init)
        for width in self.hidden:
            x = nn.Dense(width, kernel_init=hidden_init)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        if self.out_dim is not None:
            x = nn.Dense(self.out_dim, kernel_init=out_init)(x)
        return x
