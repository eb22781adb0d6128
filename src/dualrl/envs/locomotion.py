"""MuJoCo locomotion robots (hopper, halfcheetah, walker2d) on Gymnasium's v5 environments,
set up for D4RL parity, with optional ODRL dynamics shifts (see envs/shifts.py).

D4RL's `-v2` datasets were recorded with gym's v3 environments (mujoco-py). Gymnasium v5 keeps
the same observations, actions, rewards and time limit (1000), with these known differences:
- walker2d: v5's XML gives both feet friction 1.9; D4RL's left foot has 0.9. We load
  Gymnasium's v4-style `walker2d.xml`, which keeps 0.9 / 1.9 (`d4rl_xml=False` opts out).
- v5 pays hopper's and walker2d's healthy reward only while healthy; v3 (D4RL) also paid it on
  the terminal, unhealthy step. Episodes that end by falling return 1.0 less than D4RL's for
  the same motion (and their terminal reward is 1 lower); halfcheetah has no healthy reward.
- MuJoCo ≥ 3 replaces mujoco-py's MuJoCo 2.x: contacts and the RK4/Euler integration differ in
  the last digits, so rollouts of the same policy diverge after a few hundred steps.
- v5 reset noise and `exclude_current_positions_from_observation` are unchanged defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym


@dataclass(frozen=True)
class Robot:
    name: str
    env_id: str  # Gymnasium id
    xml: str  # file under gymnasium/envs/mujoco/assets used for D4RL parity
    ref_min_score: float  # D4RL reference returns (SPEC §9)
    ref_max_score: float


ROBOTS: dict[str, Robot] = {
    "hopper": Robot("hopper", "Hopper-v5", "hopper.xml", -20.272305, 3234.3),
    "halfcheetah": Robot("halfcheetah", "HalfCheetah-v5", "half_cheetah.xml", -280.178953, 12135.0),
    "walker2d": Robot("walker2d", "Walker2d-v5", "walker2d.xml", 1.629008, 4592.3),
}
MAX_EPISODE_STEPS = 1000


def assets_dir() -> Path:
    import gymnasium.envs.mujoco as mujoco_envs

    return Path(mujoco_envs.__file__).parent / "assets"


def get_robot(name: str) -> Robot:
    try:
        return ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown robot '{name}'; valid robots: {', '.join(ROBOTS)}") from None


def base_xml_path(robot: str) -> Path:
    """The D4RL-parity XML of `robot` shipped with Gymnasium."""
    return assets_dir() / get_robot(robot).xml


def make_robot_env(robot: str, xml_file: str | Path | None = None, **kwargs) -> gym.Env:
    """Gymnasium's v5 environment of `robot` with the D4RL-parity XML (or `xml_file`), time
    limit 1000. Extra kwargs go to the Gymnasium constructor."""
    spec = get_robot(robot)
    xml = Path(xml_file) if xml_file is not None else base_xml_path(robot)
    return gym.make(spec.env_id, xml_file=str(xml), max_episode_steps=MAX_EPISODE_STEPS, **kwargs)
