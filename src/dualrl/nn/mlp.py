"""Plain MLPs used by critics and Gaussian actors."""

from __future__ import annotations

import math
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


def orthogonal_init(scale: float = 1.0) -> Callable[..., jax.Array]:
    """Orthogonal kernel initialiser (Haar-distributed, as `flax.linen.initializers.orthogonal`)
    built from matmuls only: Gram–Schmidt with re-orthogonalisation (CGS2) of a Gaussian
    matrix's columns. Flax's initialiser calls LAPACK's QR; several batched QRs in one jitted
    program (a vmapped Q ensemble's layers, `QEnsemble(num_qs=10, orthogonal=True)`) deadlock
    the XLA CPU runtime of jax 0.10.2 on a 2-core machine, so this one avoids it."""

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        rows = 1
        for d in shape[:-1]:
            rows *= d
        cols = shape[-1]
        n, m = max(rows, cols), min(rows, cols)
        g = jax.random.normal(key, (n, m), jnp.float32)

        def add_column(q, j):
            v = jax.lax.dynamic_index_in_dim(g, j, axis=1, keepdims=False)
            for _ in range(2):  # the second pass restores orthogonality lost to rounding
                v = v - q @ (q.T @ v)  # the columns not yet set are zero
            return jax.lax.dynamic_update_index_in_dim(q, v / jnp.linalg.norm(v), j, 1), None

        q, _ = jax.lax.scan(add_column, jnp.zeros_like(g), jnp.arange(m))
        q = q if rows >= cols else q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init


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
        hidden_init = (orthogonal_init(math.sqrt(2.0)) if self.orthogonal
                       else nn.linear.default_kernel_init)
        out_init = orthogonal_init(1.0) if self.orthogonal else nn.linear.default_kernel_init
        for width in self.hidden:
            x = nn.Dense(width, kernel_init=hidden_init)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        if self.out_dim is not None:
            x = nn.Dense(self.out_dim, kernel_init=out_init)(x)
        return x
