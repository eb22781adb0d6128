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
    # the Minari dataset holding the same data (e.g. "mujoco/hopper/medium", newest version
    # present), looked up under $MINARI_DATASETS_PATH when the data directory lacks the file
    minari_id: str | None = None
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
    """The task's data file in data_dir(), else its Minari twin's folder under Minari's
    dataset root, or a FileNotFoundError saying how to get it."""
    from dualrl.data.dataset import DatasetError
    from dualrl.data.minari import minari_root, resolve_minari_id

    name = spec.dataset_name or spec.name
    root = data_dir()
    for suffix in DATA_SUFFIXES:
        path = root / f"{name}{suffix}"
        if path.exists() and (suffix or path.is_dir()):
            return path
    minari = ""
    if spec.minari_id is not None:
        try:
            return resolve_minari_id(spec.minari_id)
        except DatasetError:
            minari = (f", or Minari's '{spec.minari_id}' under {minari_root()} (`minari "
                      f"download {spec.minari_id}-v0`; set MINARI_DATASETS_PATH to change it)")
    tried = ", ".join(f"{name}{suffix or '/'}" for suffix in DATA_SUFFIXES)
    hint = f" To get it: {spec.dataset_hint}." if spec.dataset_hint else ""
    raise FileNotFoundError(
        f"task '{spec.name}' needs its offline dataset '{name}': pass --dataset PATH (a D4RL "
        f"HDF5 file, a Minari dataset folder or ID, or a dualrl .npz), or put it in the data "
        f"directory {root} (set DUALRL_DATA to change it) as one of: {tried}{minari}.{hint}"
    )


def scored_by_data(spec: TaskSpec, dataset: Dataset, task_data: bool) -> TaskSpec:
    """A D4RL-named task whose data is its Minari twin (`task_data`: found by the task, not
    given by --dataset) is scored with Minari's reference returns when the dataset's
    metadata carries them; shift tasks (ODRL references) and other data keep the task's."""
    if (task_data and spec.minari_id is not None and spec.name == spec.dataset_name
            and (dataset.metadata or {}).get("format") == "minari"
            and dataset.ref_min_score is not None and dataset.ref_max_score is not None):
        return dataclasses.replace(spec, ref_min_score=float(dataset.ref_min_score),
                                   ref_max_score=float(dataset.ref_max_score))
    return spec


_REGISTRY: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    _REGISTRY[spec.name] = spec
    return spec


def task_names() -> list[str]:
    return sorted(_REGISTRY)


def get_task(name: str) -> TaskSpec:
    """A registered task, or the task of a Minari dataset ID of a supported family whose data
    is present (envs/minari_tasks.py)."""
    from dualrl.data.dataset import DatasetError
    from dualrl.envs.minari_tasks import FAMILIES, minari_task

    if name in _REGISTRY:
        return _REGISTRY[name]
    try:
        spec = minari_task(name)
    except DatasetError as e:
        raise UnknownTaskError(f"task '{name}': {e}") from None
    if spec is not None:
        return spec
    raise UnknownTaskError(
        f"unknown task '{name}'; valid tasks: {', '.join(task_names())}, or the Minari ID of "
        f"a dataset present under Minari's root in {', '.join(f'{k}/' for k in FAMILIES)}"
    )


def has_task(name: str) -> bool:
    try:
        get_task(name)
    except UnknownTaskError:
        return False
    return True


def make(task: str, phase: str = "offline", **overrides: Any) -> gym.Env:
    """The public factory: the task's environment for the offline or the online phase."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase '{phase}'; valid phases: {', '.join(PHASES)}")
    spec = get_task(task)
    return spec.env_factory(spec.resolve(**overrides), phase)
