"""The one in-memory transition dataset every reader produces and every consumer reads.

Plain NumPy: a dataset is files turned into arrays, nothing more. JAX only sees the data
once the replay buffer moves it to the device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REQUIRED_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


class DatasetError(ValueError):
    """A dataset file is missing something or holds values we cannot train on.

    The message always names the file (when there is one) and the key at fault.
    """

    def __init__(self, source: str | None, key: str | None, problem: str):
        self.source, self.key, self.problem = source, key, problem
        where = source or "<in-memory dataset>"
        what = f" key '{key}'" if key else ""
        super().__init__(f"{where}:{what} {problem}")


@dataclass
class Dataset:
    """Transitions (s, a, r, s', terminal, timeout) in episode order.

    `episode_ends[i]` is True when transition i is the last of its episode (terminal,
    time-out, or the next transition does not continue from s'). Discrete actions are stored
    as one-hot float vectors.
    """

    observations: np.ndarray  # (N, ds) float32
    actions: np.ndarray  # (N, da) float32
    rewards: np.ndarray  # (N,) float32
    next_observations: np.ndarray  # (N, ds) float32
    terminals: np.ndarray  # (N,) bool
    timeouts: np.ndarray  # (N,) bool
    episode_ends: np.ndarray | None = None  # (N,) bool, derived when None
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        self.observations = _as_2d(self.observations, np.float32)
        self.actions = _as_2d(self.actions, np.float32)
        self.next_observations = _as_2d(self.next_observations, np.float32)
        self.rewards = np.asarray(self.rewards, np.float32).reshape(-1)
        self.terminals = np.asarray(self.terminals).astype(bool).reshape(-1)
        self.timeouts = np.asarray(self.timeouts).astype(bool).reshape(-1)
        self.validate()
        if self.episode_ends is None:
            self.episode_ends = derive_episode_ends(
                self.observations, self.next_observations, self.terminals, self.timeouts
            )
        else:
            self.episode_ends = np.asarray(self.episode_ends).astype(bool).reshape(-1)
            if len(self.episode_ends) != len(self):
                raise DatasetError(self.source, "episode_ends", "length does not match")
            self.episode_ends[-1] = True

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.observations.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def num_episodes(self) -> int:
        assert self.episode_ends is not None
        return int(self.episode_ends.sum())

    def episode_slices(self) -> list[slice]:
        assert self.episode_ends is not None
        ends = np.flatnonzero(self.episode_ends) + 1
        starts = np.concatenate([[0], ends[:-1]])
        return [slice(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]

    def episode_returns(self) -> np.ndarray:
        return np.array([self.rewards[s].sum() for s in self.episode_slices()], np.float64)

    def normalized_score(self, raw_return: float | np.ndarray) -> float | np.ndarray:
        """D4RL score 100·(R − R_min)/(R_max − R_min); the raw return when no reference."""
        if self.ref_min_score is None or self.ref_max_score is None:
            return raw_return
        return 100.0 * (raw_return - self.ref_min_score) / (self.ref_max_score - self.ref_min_score)

    def arrays(self) -> dict[str, np.ndarray]:
        assert self.episode_ends is not None
        return {k: getattr(self, k) for k in (*REQUIRED_KEYS, "episode_ends")}

    def fingerprint(self) -> str:
        """A digest of the training arrays (BLAKE2b, ~1 GB/s): equal iff the data is equal,
        however the file storing it was written."""
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        for key, arr in self.arrays().items():
            h.update(f"{key}:{arr.dtype.str}:{arr.shape}".encode())
            h.update(np.ascontiguousarray(arr).data)
        return h.hexdigest()

    def replace(self, **changes: Any) -> Dataset:
        return dataclasses.replace(self, **changes)

    # -------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise DatasetError naming the source and key for anything we cannot train on."""
        n = self.observations.shape[0]
        if n == 0:
            raise DatasetError(self.source, "observations", "dataset is empty (0 transitions)")
        for key in REQUIRED_KEYS:
            arr = getattr(self, key)
            if arr.shape[0] != n:
                raise DatasetError(
                    self.source,
                    key,
                    f"has {arr.shape[0]} rows but 'observations' has {n} (length mismatch)",
                )
        if self.next_observations.shape[1] != self.observations.shape[1]:
            raise DatasetError(
                self.source,
                "next_observations",
                f"has width {self.next_observations.shape[1]}, "
                f"observations have {self.observations.shape[1]}",
            )
        for key in ("observations", "actions", "rewards", "next_observations"):
            arr = getattr(self, key)
            bad = ~np.isfinite(arr)
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                raise DatasetError(
                    self.source,
                    key,
                    f"contains {int(bad.sum())} non-finite values (NaN/inf), first at row {row}",
                )

    def check_compatible(self, obs_dim: int, act_dim: int, task: str) -> None:
        """Fail clearly when the data does not fit the task's environment."""
        if self.obs_dim != obs_dim:
            raise DatasetError(
                self.source,
                "observations",
                f"have {self.obs_dim} dims but task '{task}' observes {obs_dim}",
            )
        if self.act_dim != act_dim:
            raise DatasetError(
                self.source,
                "actions",
                f"have {self.act_dim} dims but task '{task}' acts with {act_dim}",
            )


def _as_2d(arr: np.ndarray, dtype: type) -> np.ndarray:
    arr = np.asarray(arr, dtype=dtype)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        arr = arr.reshape(arr.shape[0], -1)
    return arr


def derive_episode_ends(
    observations: np.ndarray,
    next_observations: np.ndarray,
    terminals: np.ndarray,
    timeouts: np.ndarray,
    atol: float = 1e-6,
) -> np.ndarray:
    """An episode ends at a terminal, a time-out, or where s'_i is not s_{i+1}."""
    ends = terminals | timeouts
    if len(observations) > 1:
        jump = ~np.all(np.isclose(next_observations[:-1], observations[1:], atol=atol), axis=1)
        ends = ends.copy()
        ends[:-1] |= jump
    ends = np.asarray(ends, bool).copy()
    ends[-1] = True
    return ends


def concatenate(datasets: list[Dataset], source: str | None = None) -> Dataset:
    """Join datasets end to end (e.g. medium + expert)."""
    if not datasets:
        raise DatasetError(source, None, "nothing to concatenate")
    arrays = {
        k: np.concatenate([d.arrays()[k] for d in datasets])
        for k in (*REQUIRED_KEYS, "episode_ends")
    }
    first = datasets[0]
    return Dataset(
        **arrays,
        ref_min_score=first.ref_min_score,
        ref_max_score=first.ref_max_score,
        metadata=dict(first.metadata),
        source=source,
    )
