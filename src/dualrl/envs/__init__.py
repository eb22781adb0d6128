"""Tasks: `dualrl.envs.make(task, phase="offline"|"online", **overrides)` is the one factory."""

from dualrl.envs import frozenlake_tasks as _frozenlake_tasks  # noqa: F401  (registers tasks)
from dualrl.envs import locomotion_tasks as _locomotion_tasks  # noqa: F401
from dualrl.envs import robotics_tasks as _robotics_tasks  # noqa: F401
from dualrl.envs.registry import (
    PHASES,
    TaskSpec,
    UnknownTaskError,
    data_dir,
    find_dataset_file,
    get_task,
    has_task,
    make,
    register,
    task_names,
)

__all__ = [
    "data_dir",
    "find_dataset_file",
    "PHASES",
    "TaskSpec",
    "UnknownTaskError",
    "get_task",
    "has_task",
    "make",
    "register",
    "task_names",
]
