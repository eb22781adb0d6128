"""Exponential moving average of weights; the EMA copy is what samplers use."""

from __future__ import annotations

import jax


def ema_update(ema_params, params, decay: float):
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)
