"""Observation normaliser fitted on the offline data and reused unchanged online (SPEC §1.5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Normalizer:
    mean: np.ndarray
    std: np.ndarray

    @staticmethod
    def fit(observations: np.ndarray, eps: float = 1e-3) -> Normalizer:
        obs = np.asarray(observations, np.float64)
        return Normalizer(obs.mean(0).astype(np.float32), (obs.std(0) + eps).astype(np.float32))

    @staticmethod
    def identity(dim: int) -> Normalizer:
        return Normalizer(np.zeros(dim, np.float32), np.ones(dim, np.float32))

    def __call__(self, obs):
        """Works on NumPy and JAX arrays alike."""
        return (obs - self.mean) / self.std

    def unnormalize(self, obs):
        return obs * self.std + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @staticmethod
    def from_dict(d: dict[str, list[float]]) -> Normalizer:
        return Normalizer(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))
