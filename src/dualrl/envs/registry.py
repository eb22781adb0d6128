"""Task registry: a task name -> environment factory (offline / online phase), offline data
and reference scores. Every task parameter is a field of the task's params dataclass, so the
CLI can override any of them (`--env.slip-online 0.5`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
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
