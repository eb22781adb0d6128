"""Adroit hand tasks (pen, door, hammer, relocate) on Gymnasium-Robotics v1 with D4RL parity.

D4RL's `*-v1` adroit datasets were recorded in mj_envs' hand_manipulation_suite (DAPG). The
Gymnasium-Robotics `AdroitHand*-v1` classes keep its models, observations, actions, resets and
dense rewards, except:

- Reward sign (door, hammer, relocate). Since Gymnasium-Robotics 1.2.1 (installed: 1.4.2) the
  first reward term, the palm-to-object distance, is *added*: `reward = 0.1 * ‖palm − obj‖`
  (door: obj = the handle site; hammer: the hammer body; relocate: the ball body), where D4RL
  subtracts it: `reward = -0.1 * ‖palm − obj‖`. Every other term (door hinge, hammer head to
  nail, nail depth, velocity costs, lift / success bonuses) is identical. `D4RLAdroitReward`
  restores D4RL's reward as r − 0.2‖palm − obj‖, the distance read from the same post-step
  state the environment used; `info["reward_gymnasium_robotics"]` keeps the original. With
  Gymnasium-Robotics < 1.2.1 (D4RL's sign) nothing is changed.
- Pen: D4RL ends the episode when the pen is dropped (its height below 0.075, the step that
  also pays the −5 penalty); Gymnasium-Robotics never terminates. We terminate as D4RL
  (`terminate_on_drop`).
- Horizon: D4RL's pen-* tasks run 100 steps, door / hammer / relocate 200; Gymnasium-Robotics
  registers 200 for all four.

Remaining known differences: MuJoCo 3 instead of mujoco-py / MuJoCo 2 (same models, numerics
differ in the last digits); `info["is_success"]` is the per-step goal test (D4RL's
`evaluate_success` needs it for more than 20 / 25 steps of an episode).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import gymnasium as gym
import numpy as np

DISTANCE_WEIGHT = 0.1  # D4RL: reward = -0.1 * ‖palm − obj‖ + ...
PEN_DROP_HEIGHT = 0.075


@dataclass(frozen=True)
class AdroitHand:
    name: str
    env_class: str  # "module:Class" under gymnasium_robotics.envs.adroit_hand
    horizon: int  # D4RL's max_episode_steps
    ref_min_score: float  # D4RL's random / expert returns (SPEC §9)
    ref_max_score: float
    distance_fixed: bool  # whether the palm-to-object term needs D4RL's sign back


HANDS: dict[str, AdroitHand] = {
    "pen": AdroitHand("pen", "adroit_pen:AdroitHandPenEnv", 100, 96.262799, 3076.833, False),
    "door": AdroitHand("door", "adroit_door:AdroitHandDoorEnv", 200, -56.512833, 2880.569, True),
    "hammer": AdroitHand("hammer", "adroit_hammer:AdroitHandHammerEnv", 200,
                         -274.856578, 12794.135, True),
    "relocate": AdroitHand("relocate", "adroit_relocate:AdroitHandRelocateEnv", 200,
                           -6.425911, 4233.878, True),
}


def get_hand(name: str) -> AdroitHand:
    try:
        return HANDS[name]
    except KeyError:
        raise ValueError(f"unknown adroit task '{name}'; valid: {', '.join(HANDS)}") from None


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def distance_sign_flipped() -> bool:
    """Whether the installed Gymnasium-Robotics adds the palm-to-object distance (>= 1.2.1)."""
    return _version_tuple(metadata.version("gymnasium_robotics")) >= (1, 2, 1)


def palm_object_distance(env: gym.Env, hand: str) -> float:
    """‖palm − obj‖ as the hand's reward reads it, from the environment's current state."""
    base = env.unwrapped
    data = base.data
    if hand == "door":
        palm = data.site_xpos[base.grasp_site_id]
        obj = data.site_xpos[base.handle_site_id]
    elif hand in ("hammer", "relocate"):
        palm = data.site_xpos[base.S_grasp_site_id]
        obj = data.xpos[base.obj_body_id]
    else:
        raise ValueError(f"adroit task '{hand}' has no palm-to-object reward term")
    return float(np.linalg.norm(palm - obj))


class D4RLAdroitReward(gym.Wrapper):
    """D4RL's reward and episode end on a Gymnasium-Robotics AdroitHand*-v1 env (module doc)."""

    def __init__(self, env: gym.Env, hand: str, fix_reward: bool = True,
                 terminate_on_drop: bool = True):
        super().__init__(env)
        self.hand = get_hand(hand)
        self.correct_distance = (fix_reward and self.hand.distance_fixed
                                 and distance_sign_flipped())
        self.terminate_on_drop = terminate_on_drop and hand == "pen"

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["reward_gymnasium_robotics"] = float(reward)
        if self.correct_distance:
            reward = float(reward) - 2.0 * DISTANCE_WEIGHT * palm_object_distance(
                self.env, self.hand.name)
        if self.terminate_on_drop:
            base = self.env.unwrapped
            terminated = terminated or bool(base.data.xpos[base.obj_body_id][2] < PEN_DROP_HEIGHT)
        info["is_success"] = bool(info.get("success", False))
        return obs, float(reward), bool(terminated), truncated, info


def make_adroit_env(hand: str, time_limit: int | None = None, fix_reward: bool = True,
                    terminate_on_drop: bool = True, render_mode: str | None = None) -> gym.Env:
    """`<hand>-*-v1` as D4RL: dense reward with D4RL's sign, pen drop ends the episode, time
    limit 100 (pen) / 200 (others) unless `time_limit` is given."""
    spec = get_hand(hand)
    module_name, class_name = spec.env_class.split(":")
    module = importlib.import_module(f"gymnasium_robotics.envs.adroit_hand.{module_name}")
    base = getattr(module, class_name)(reward_type="dense", render_mode=render_mode)
    env = D4RLAdroitReward(base, hand, fix_reward=fix_reward,
                           terminate_on_drop=terminate_on_drop)
    limit = spec.horizon if time_limit is None else time_limit
    return gym.wrappers.TimeLimit(env, max_episode_steps=limit)
