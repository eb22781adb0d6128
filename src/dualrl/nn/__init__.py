"""Shared network building blocks (generic: no RL imports)."""

from dualrl.nn.mlp import MLP

__all__ = ["MLP"]
