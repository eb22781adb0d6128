"""Task registry: a task name -> environment factory (offline / online phase), offline data
and reference scores. Every task parameter is a field of the task's params dataclass, so the
CLI can override any of them (`--env.slip-online 0.5`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from dualrl.data.dataset import Dataset

PHASES = ("offline", "online")


class UnknownTaskError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass(frozen=True)
class TaskSpec:
    name: str
    family: str
    description: str
    params: Any  # frozen dataclass instance holding the defaults
    env_factory: Callable[[Any, str], gym.Env]
    dataset_factory: Callable[[Any], Dataset] | None
    ref_min_score: float
    ref_max_score: float
    # the offline data's file name in the data directory (D4RL's name, e.g. "hopper-medium-v2");
    # used when the task has no dataset_factory and no --dataset is given
    dataset_name: str | None = None
    # how to get the data when it is missing (shown in the error), e.g. a `dualrl collect` line
    dataset_hint: str = ""
    # exact diagnostics of a policy where the task can compute them (Frozen-Lake: dynamic
    # programming): (params, policy(raw obs) -> actions, q(raw obs, actions) -> Q or None)
    # -> {name: value}, logged with every evaluation
    diagnose: Callable[[Any, Callable, Callable | None], dict[str, float]] | None = None

    def resolve(self, **overrides: Any) -> Any:
        """Defaults with overrides applied; unknown names fail listing the valid ones."""
        valid = {f.name for f in dataclasses.fields(self.params)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise TypeError(
                f"task '{self.name}' has no parameter {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(valid))}"
            )
        return dataclasses.replace(self.params, **overrides)

    def normalized_score(self, raw_return: float) -> float:
        return 100.0 * (raw_return - self.ref_min_score) / (
            self.ref_max_score - self.ref_min_score
        )


DATA_SUFFIXES = (".hdf5", ".h5", ".npz", "")  # "" = a Minari dataset folder


def data_dir() -> Path:
    """Where tasks look for their offline data: $DUALRL_DATA, else ~/.cache/dualrl/datasets."""
    env = os.environ.get("DUALRL_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dualrl" / "datasets"


def find_dataset_file(spec: TaskSpec) -> Path:
    """The task's data file in data_dir(), or a FileNotFoundError saying how to get it."""
    name = spec.dataset_name or spec.name
    root = data_dir()
    for suffix in DATA_SUFFIXES:
        path = root / f"{name}{suffix}"
        if path.exists() and (suffix or path.is_dir()):
            return path
    tried = ", ".join(f"{name}{suffix or '/'}" for suffix in DATA_SUFFIXES)
    hint = f" To get it: {spec.dataset_hint}." if spec.dataset_hint else ""
    raise FileNotFoundError(
        f"task '{spec.name}' needs its offline dataset '{name}': pass --dataset PATH (a D4RL "
        f"HDF5 file, a Minari dataset folder or a dualrl .npz), or put it in the data "
        f"directory {root} (set DUALRL_DATA to change it) as one of: {tried}.{hint}"
    )


_REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    _REGISTRY[spec.name] = spec
    return spec


def task_names() -> list[str]:
    return sorted(_REGISTRY)


def get_task(name: str) -> TaskSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTaskError(
            f"unknown task '{name}'; valid tasks: {', '.join(task_names())}"
        ) from None


def make(task: str, phase: str = "offline", **overrides: Any) -> gym.Env:
    """The public factory: the task's environment for the offline or the online phase."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase '{phase}'; valid phases: {', '.join(PHASES)}")
    spec = get_task(task)
    return spec.env_factory(spec.resolve(**overrides), phase)
