"""Diffuser-style temporal U-Net denoiser (Janner et al. 2022) over trajectory segments.

Same interface as :class:`dualrl.nn.denoisers.MLPDenoiser`:
  __call__(z, t) -> (B, D)           z: (B, D) flattened segment, D = horizon * transition_dim,
                                     row-major (z.reshape(B, horizon, transition_dim)); t: (B,)
  features(z, t) -> φ                (B, horizon, dim): per-position features after the final
                                     conv block, before the output projection
  head(φ) -> (B, D)                  LINEAR per-position projection dim -> transition_dim
                                     (a 1x1 conv == Dense over channels), then flattened
and __call__(z, t) == head(features(z, t)).

Layout is channels-last, (B, H, C), throughout (flax ``nn.Conv`` convention).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dualrl.nn.embeddings import sinusoidal_embedding
from dualrl.nn.mlp import ACTIVATIONS

_mish = ACTIVATIONS["mish"]


class Conv1dBlock(nn.Module):
    """Conv1D (kernel k, 'SAME') -> GroupNorm(groups) -> Mish on (B, H, C)."""

    features: int
    kernel_size: int = 5
    groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Conv(self.features, (self.kernel_size,), padding="SAME")(x)
        x = nn.GroupNorm(num_groups=self.groups, epsilon=1e-5)(x)
        return _mish(x)


class ResidualTemporalBlock(nn.Module):
    """Two conv blocks; the time embedding enters through Mish -> Dense after the first one.

    A 1x1 conv maps the residual when the channel count changes.
    """

    features: int
    kernel_size: int = 5
    groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array, emb: jax.Array) -> jax.Array:
        out = Conv1dBlock(self.features, self.kernel_size, self.groups)(x)
        out = out + nn.Dense(self.features)(_mish(emb))[:, None, :]
        out = Conv1dBlock(self.features, self.kernel_size, self.groups)(out)
        if x.shape[-1] != self.features:
            x = nn.Conv(self.features, (1,))(x)
        return out + x


class TemporalUNetDenoiser(nn.Module):
    """Temporal U-Net over a (horizon, transition_dim) segment, as in Diffuser.

    Time embedding: sinusoidal(dim) -> Dense(4 dim) -> Mish -> Dense(dim).
    Down path: per level (channels dim * mult), two residual temporal blocks, then a stride-2
    conv downsample except at the last level. Middle: two residual blocks. Up path: mirrors the
    down path (all levels but the first) with skip concatenations, two residual blocks and a
    transposed-conv (kernel 4, stride 2) upsample per level. Then a final conv block
    (Conv k -> GroupNorm -> Mish) with ``dim`` channels gives the features φ, and the linear
    head maps them to ``transition_dim`` per position.

    Horizons that are not a multiple of ``2 ** (len(dim_mults) - 1)`` (e.g. H = 4 or 12 with
    four levels) are handled by replicate-padding the time axis at the END (repeating the last
    step; the conditioned s_0 slot stays at position 0) up to the next multiple, running the
    U-Net on the padded segment and cropping the features back to the first ``horizon``
    positions before the head. All of this is static in the shapes, so it is jit-compatible.

    Every channel count ``dim * mult`` must be divisible by ``groups`` (GroupNorm).
    """

    out_dim: int
    horizon: int
    transition_dim: int
    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 2, 4, 8)
    kernel_size: int = 5
    groups: int = 8

    def setup(self) -> None:
        if self.out_dim != self.horizon * self.transition_dim:
            raise ValueError(
                f"out_dim={self.out_dim} != horizon * transition_dim = "
                f"{self.horizon} * {self.transition_dim}"
            )
        if not self.dim_mults:
            raise ValueError("dim_mults must be non-empty")
        widths = [self.dim * m for m in self.dim_mults]
        for w in widths:
            if w % self.groups:
                raise ValueError(f"channel count {w} not divisible by groups={self.groups}")
        n = len(widths)
        k, g = self.kernel_size, self.groups

        self.time_mlp = [nn.Dense(4 * self.dim), nn.Dense(self.dim)]
        self.downs = [
            (
                ResidualTemporalBlock(w, k, g),
                ResidualTemporalBlock(w, k, g),
                nn.Conv(w, (3,), strides=(2,), padding=((1, 1),)) if i < n - 1 else None,
            )
            for i, w in enumerate(widths)
        ]
        self.mid = [
            ResidualTemporalBlock(widths[-1], k, g),
            ResidualTemporalBlock(widths[-1], k, g),
        ]
        # Up levels n-2 .. 0: the block at level i outputs widths[i] and upsamples (Diffuser).
        self.ups = [
            (
                ResidualTemporalBlock(widths[i], k, g),
                ResidualTemporalBlock(widths[i], k, g),
                nn.ConvTranspose(widths[i], (4,), strides=(2,), padding="SAME"),
            )
            for i in reversed(range(n - 1))
        ]
        self.final_block = Conv1dBlock(self.dim, k, g)
        self.output = nn.Dense(self.transition_dim)

    @property
    def _padded_horizon(self) -> int:
        m = 2 ** (len(self.dim_mults) - 1)
        return -(-self.horizon // m) * m

    def features(self, z: jax.Array, t: jax.Array) -> jax.Array:
        batch = z.shape[0]
        x = z.reshape(batch, self.horizon, self.transition_dim)
        pad = self._padded_horizon - self.horizon
        if pad:
            x = jnp.pad(x, ((0, 0), (0, pad), (0, 0)), mode="edge")

        emb = sinusoidal_embedding(t, self.dim)
        emb = self.time_mlp[1](_mish(self.time_mlp[0](emb)))

        skips = []
        for block1, block2, down in self.downs:
            x = block2(block1(x, emb), emb)
            skips.append(x)
            if down is not None:
                x = down(x)
        for block in self.mid:
            x = block(x, emb)
        for block1, block2, up in self.ups:
            x = jnp.concatenate([x, skips.pop()], axis=-1)
            x = block2(block1(x, emb), emb)
            x = up(x)
        x = self.final_block(x)
        return x[:, : self.horizon]

    def head(self, phi: jax.Array) -> jax.Array:
        out = self.output(phi)
        return out.reshape(*out.shape[:-2], out.shape[-2] * out.shape[-1])

    def __call__(self, z: jax.Array, t: jax.Array) -> jax.Array:
        return self.head(self.features(z, t))
