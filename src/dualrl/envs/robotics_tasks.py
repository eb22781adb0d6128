"""Registered Gymnasium-Robotics tasks with D4RL parity (SPEC §9): maze2d, antmaze, adroit.

- `maze2d-{umaze,medium,large}-v1` (family "maze2d"): the point mass of `envs/mazes.py`. No
  download exists on our machines, so `dualrl collect maze` regenerates D4RL-style data (1M
  steps of the waypoint controller, `collect/waypoints.py`); too slow to run implicitly, so the
  tasks read it from the data directory like any other file.
- `antmaze-{umaze,umaze-diverse,medium-play,medium-diverse,large-play,large-diverse}-v2`
  (family "antmaze") and `{pen,door,hammer,relocate}-cloned-v1` (family "adroit"): the data are
  D4RL's files, supplied by the user.
Every task has no shift: the offline and the online phase use the same environment. Gymnasium-
Robotics is imported only when an environment is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from dualrl.envs.adroit import HANDS, get_hand, make_adroit_env
from dualrl.envs.mazes import MAZES, POINT_REF_SCORES, get_layout, make_ant_maze, make_point_maze
from dualrl.envs.registry import TaskSpec, register


def _check_time_limit(time_limit: int | None) -> None:
    if time_limit is not None and time_limit < 1:
        raise ValueError(f"time_limit (--env.time-limit) must be >= 1, got {time_limit}")


@dataclass(frozen=True)
class PointMazeParams:
    maze: str = "umaze"  # umaze | medium | large
    reward_type: str = "sparse"  # sparse (maze2d-v1, the reference scores' reward) | dense
    time_limit: int | None = None  # None: D4RL's (umaze 300, medium 600, large 800)

    def __post_init__(self) -> None:
        get_layout(self.maze)
        if self.reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type (--env.reward-type) must be sparse or dense, "
                             f"got '{self.reward_type}'")
        _check_time_limit(self.time_limit)


@dataclass(frozen=True)
class AntMazeParams:
    maze: str = "umaze"  # D4RL test map: umaze | medium (big maze) | large (hardest maze)
    time_limit: int | None = None  # None: D4RL's (umaze 700, medium and large 1000)

    def __post_init__(self) -> None:
        get_layout(self.maze)
        _check_time_limit(self.time_limit)


@dataclass(frozen=True)
class AdroitParams:
    hand: str = "pen"  # pen | door | hammer | relocate
    time_limit: int | None = None  # None: D4RL's (pen 100, others 200)
    fix_reward: bool = True  # D4RL's sign of the palm-to-object term (door, hammer, relocate)
    terminate_on_drop: bool = True  # pen: D4RL ends the episode when the pen falls

    def __post_init__(self) -> None:
        get_hand(self.hand)
        _check_time_limit(self.time_limit)


def point_maze_env(params: PointMazeParams, phase: str) -> gym.Env:
    return make_point_maze(params.maze, reward_type=params.reward_type,
                           time_limit=params.time_limit)


def ant_maze_env(params: AntMazeParams, phase: str) -> gym.Env:
    return make_ant_maze(params.maze, time_limit=params.time_limit)


def adroit_env(params: AdroitParams, phase: str) -> gym.Env:
    return make_adroit_env(params.hand, time_limit=params.time_limit,
                           fix_reward=params.fix_reward,
                           terminate_on_drop=params.terminate_on_drop)


# ---------------------------------------------------------------------------- maze2d
for _maze in MAZES:
    _name = f"maze2d-{_maze}-v1"
    register(TaskSpec(
        name=_name,
        family="maze2d",
        description=f"D4RL {_name}: point mass, fixed goal, sparse reward (Gymnasium-Robotics)",
        params=PointMazeParams(maze=_maze),
        env_factory=point_maze_env,
        dataset_factory=None,  # 1M controller steps take minutes: generate once, then read
        ref_min_score=POINT_REF_SCORES[_maze][0],
        ref_max_score=POINT_REF_SCORES[_maze][1],
        dataset_name=_name,
        dataset_hint=(
            f"`dualrl collect maze --maze {_maze} --steps 1000000 --out "
            f"<data directory>/{_name}.hdf5` (D4RL's size; a few minutes); D4RL's own "
            f"maze2d-{_maze}-sparse-v1.hdf5 uses the same frame and can be saved under that "
            f"name instead"
        ),
    ))

# --------------------------------------------------------------------------- antmaze
# task -> (maze, D4RL's file name as d4rl downloads it, Minari's name)
ANTMAZE_DATA = {
    "antmaze-umaze-v2": (
        "umaze", "Ant_maze_u-maze_noisy_multistart_False_multigoal_False_sparse_fixed.hdf5",
        "D4RL/antmaze/umaze-v1"),
    "antmaze-umaze-diverse-v2": (
        "umaze", "Ant_maze_u-maze_noisy_multistart_True_multigoal_True_sparse_fixed.hdf5",
        "D4RL/antmaze/umaze-diverse-v1"),
    "antmaze-medium-play-v2": (
        "medium", "Ant_maze_big-maze_noisy_multistart_True_multigoal_False_sparse_fixed.hdf5",
        "D4RL/antmaze/medium-play-v1"),
    "antmaze-medium-diverse-v2": (
        "medium", "Ant_maze_big-maze_noisy_multistart_True_multigoal_True_sparse_fixed.hdf5",
        "D4RL/antmaze/medium-diverse-v1"),
    "antmaze-large-play-v2": (
        "large", "Ant_maze_hardest-maze_noisy_multistart_True_multigoal_False_sparse_fixed.hdf5",
        "D4RL/antmaze/large-play-v1"),
    "antmaze-large-diverse-v2": (
        "large", "Ant_maze_hardest-maze_noisy_multistart_True_multigoal_True_sparse_fixed.hdf5",
        "D4RL/antmaze/large-diverse-v1"),
}

for _name, (_maze, _d4rl_file, _minari) in ANTMAZE_DATA.items():
    register(TaskSpec(
        name=_name,
        family="antmaze",
        description=f"D4RL {_name}: Ant, test map '{_maze}', success within 0.5 of the goal",
        params=AntMazeParams(maze=_maze),
        env_factory=ant_maze_env,
        dataset_factory=None,
        ref_min_score=0.0,
        ref_max_score=1.0,
        dataset_name=_name,
        dataset_hint=(
            f"get D4RL's {_name} file (d4rl saves it as ~/.d4rl/datasets/{_d4rl_file}) and "
            f"copy or link it to <data directory>/{_name}.hdf5; Minari's {_minari} does not "
            f"fit (re-collected in Gymnasium-Robotics' centred frame with the goal in a dict "
            f"observation)"
        ),
    ))

# ---------------------------------------------------------------------------- adroit
for _hand in HANDS.values():
    _name = f"{_hand.name}-cloned-v1"
    register(TaskSpec(
        name=_name,
        family="adroit",
        description=f"D4RL {_name}: Adroit hand, D4RL reward and horizon {_hand.horizon}",
        params=AdroitParams(hand=_hand.name),
        env_factory=adroit_env,
        dataset_factory=None,
        ref_min_score=_hand.ref_min_score,
        ref_max_score=_hand.ref_max_score,
        dataset_name=_name,
        dataset_hint=(
            f"get D4RL's {_name}.hdf5 (d4rl saves it as ~/.d4rl/datasets/{_name}.hdf5) and "
            f"copy it to <data directory>/{_name}.hdf5, or copy Minari's D4RL/{_hand.name}/"
            f"cloned-v2 folder (~/.minari/datasets/D4RL/{_hand.name}/cloned-v2) to "
            f"<data directory>/{_name}"
        ),
    ))
