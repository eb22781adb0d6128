"""Tasks named by Minari dataset IDs (issue 17): `--task D4RL/antmaze/umaze-v1`.

Minari's AntMaze and point-maze datasets were re-collected in Gymnasium-Robotics' own frame
with dict observations (observation, achieved_goal, desired_goal), and its Adroit datasets on
Gymnasium-Robotics' hands: they do not fit the D4RL-frame wrappers of robotics_tasks.py. A
task named by such an ID is built from the dataset itself: the environment its metadata names
(`eval_env_spec`, else `env_spec`), dict observations flattened exactly as the reader flattens
them (`observation` first, then the other keys sorted), Gymnasium-Robotics' `success` info
reported as `is_success`, and Minari's reference scores from the metadata (else the family's
SPEC §9 references). The offline and the online phase use that environment; no shift variant
is built (Minari publishes none). The task exists while its data is present under
$MINARI_DATASETS_PATH (or ~/.minari/datasets): it is resolved when first named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from dualrl.data.minari import METADATA_FILE, find_minari_data_dir, is_minari_id, obs_order
from dualrl.envs.registry import TaskSpec

# Minari namespace -> (task family, the family's references when metadata has none)
FAMILIES: dict[str, tuple[str, tuple[float, float] | None]] = {
    "D4RL/antmaze": ("antmaze", (0.0, 1.0)),
    "D4RL/pointmaze": ("maze2d", None),
    "D4RL/pen": ("adroit", (96.262799, 3076.833)),
    "D4RL/door": ("adroit", (-56.512833, 2880.569)),
    "D4RL/hammer": ("adroit", (-274.856578, 12794.135)),
    "D4RL/relocate": ("adroit", (-6.425911, 4233.878)),
}


@dataclass(frozen=True)
class MinariTaskParams:
    dataset_id: str = ""
    max_episode_steps: int = 0  # 0: the metadata's


def _obs_keys(space: gym.Space) -> list[str] | None:
    """A Dict space's keys in the order the reader concatenates them (None: not a Dict)."""
    return obs_order(list(space.spaces)) if isinstance(space, gym.spaces.Dict) else None


class FlatObservation(gym.ObservationWrapper):
    """Dict observations as one vector in the Minari reader's order; `success` -> is_success."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.keys = _obs_keys(env.observation_space)
        if self.keys is not None:
            size = sum(int(np.prod(env.observation_space[k].shape)) for k in self.keys)
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float64)

    def observation(self, observation: Any) -> np.ndarray:
        if self.keys is None:
            return np.asarray(observation)
        return np.concatenate([np.ravel(observation[k]) for k in self.keys])

    def step(self, action):
        obs, reward, term, trunc, info = super().step(action)
        if "success" in info and "is_success" not in info:
            info = {**info, "is_success": bool(info["success"])}
        return obs, reward, term, trunc, info


def _family(dataset_id: str) -> tuple[str, tuple[float, float] | None] | None:
    for prefix, family in FAMILIES.items():
        if dataset_id.startswith(prefix + "/"):
            return family
    return None


def minari_task(dataset_id: str) -> TaskSpec | None:
    """The task of a Minari ID in a supported family (None for other names); a DatasetError
    when the dataset is not present or its metadata names no environment."""
    from dualrl.data.dataset import DatasetError
    from dualrl.data.minari import resolve_minari_id

    if not is_minari_id(dataset_id) or _family(dataset_id) is None:
        return None
    family, default_refs = _family(dataset_id)
    folder = find_minari_data_dir(resolve_minari_id(dataset_id))
    meta_path = folder / METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(str(meta_path), None, f"unreadable Minari metadata ({e})") from None
    spec_json = meta.get("eval_env_spec") or meta.get("env_spec")
    if not spec_json:
        raise DatasetError(str(meta_path), "env_spec", "names no environment to build")
    refs = (meta.get("ref_min_score"), meta.get("ref_max_score"))
    if refs[0] is None or refs[1] is None:
        if default_refs is None:
            raise DatasetError(str(meta_path), "ref_min_score",
                               "missing, and the family has no reference scores")
        refs = default_refs

    def env_factory(params: MinariTaskParams, phase: str) -> gym.Env:
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        spec = gym.envs.registration.EnvSpec.from_json(spec_json)
        kwargs = {"max_episode_steps": params.max_episode_steps} \
            if params.max_episode_steps > 0 else {}
        return FlatObservation(gym.make(spec, **kwargs))

    return TaskSpec(
        name=dataset_id, family=family,
        description=f"Minari {dataset_id}: the environment its metadata names, dict "
                    "observations flattened as the reader does",
        params=MinariTaskParams(dataset_id=dataset_id), env_factory=env_factory,
        dataset_factory=None, ref_min_score=float(refs[0]), ref_max_score=float(refs[1]),
        dataset_name=dataset_id, minari_id=dataset_id)
