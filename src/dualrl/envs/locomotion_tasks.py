"""Registered MuJoCo locomotion tasks (SPEC §9): D4RL's datasets and ODRL's dynamics shifts.

- `<robot>-<quality>-v2` (robot: hopper, halfcheetah, walker2d; quality: random, medium,
  medium-replay, medium-expert, expert): D4RL's tasks; no shift.
- `<robot>-friction-<0.1|0.5|2.0|5.0>`, `<robot>-gravity-<level>`,
  `<robot>-kinematic-<easy|medium|hard>`, `<robot>-morphology-<easy|medium|hard>`: ODRL's
  shifts, offline data from `<robot>-medium-v2` collected in the unshifted robot; the online
  phase and its evaluation run in the shifted one.
- The paper's ODRL tasks: `halfcheetah-friction-2.0` (medium data), `halfcheetah-med-gravity-2.0`
  (medium-replay data), `hopper-kinematic-2.0` and `walker2d-morphology-2.0` (medium data;
  "2.0" names no ODRL level, we use medium).

The data is read from `--dataset PATH` or from the data directory (`$DUALRL_DATA`) under D4RL's
file name, e.g. `hopper-medium-v2.hdf5`; `dualrl collect sac --env hopper --out DIR` makes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from dualrl.envs.locomotion import ROBOTS, get_robot, make_robot_env
from dualrl.envs.registry import TaskSpec, register
from dualrl.envs.shifts import SCALE_LEVELS, SEVERITY_LEVELS, Shift, install_model, shifted_spec

QUALITIES = ("random", "medium", "medium-replay", "medium-expert", "expert")

# ODRL's reference returns (SPEC §9); other shifted halfcheetah tasks keep D4RL's.
ODRL_REF: dict[str, tuple[float, float]] = {
    "hopper": (-26.336, 3234.3),
    "walker2d": (10.079, 4592.3),
}
ODRL_HALFCHEETAH_MAX = {"friction-2.0": 11255.97, "gravity-2.0": 9509.15}


@dataclass(frozen=True)
class LocomotionParams:
    robot: str = "hopper"
    shift: str | None = None  # friction | gravity | kinematic | morphology; None: no shift
    level: str | None = None  # 0.1 / 0.5 / 2.0 / 5.0 (friction, gravity); easy / medium / hard
    part: str | None = None  # kinematic joint group / morphology limb; None: ODRL's default
    shift_offline: bool = False  # also shift the offline phase (off: ODRL's protocol)

    def __post_init__(self) -> None:
        get_robot(self.robot)
        if self.shift is not None:
            if self.level is None:
                raise ValueError("a shift needs a level (--env.level)")
            shift = Shift(self.shift, str(self.level), self.part)  # validates kind and level
            if shift.kind in ("kinematic", "morphology"):
                shift.parts(self.robot)  # validates the part

    def shift_spec(self) -> Shift | None:
        return None if self.shift is None else Shift(self.shift, str(self.level), self.part)


def locomotion_env(params: LocomotionParams, phase: str) -> gym.Env:
    env = make_robot_env(params.robot)
    shift = params.shift_spec()
    if shift is not None and (phase == "online" or params.shift_offline):
        install_model(env, shifted_spec(params.robot, shift).compile())
    return env


def _hint(robot: str) -> str:
    return (f"`dualrl collect sac --env {robot} --preset small --out DIR` writes "
            f"{robot}-<random|medium|medium-replay|medium-expert|expert>-v2.hdf5 into DIR; "
            f"point DUALRL_DATA at DIR")


# D4RL qualities with a Minari twin collected on the same Gymnasium v5 robots
# (mujoco/<robot>/<quality>-v0); random, medium-replay and medium-expert have none (Minari's
# "simple" is a weakly trained policy, not D4RL's random one)
MINARI_QUALITIES = ("medium", "expert")


def minari_twin(data: str) -> str | None:
    """`hopper-medium-v2` -> `mujoco/hopper/medium` (no version: the newest present)."""
    robot, _, rest = data.partition("-")
    quality = rest.removesuffix("-v2")
    return f"mujoco/{robot}/{quality}" if quality in MINARI_QUALITIES else None


def _register(name: str, params: LocomotionParams, data: str, refs: tuple[float, float],
              description: str) -> None:
    register(TaskSpec(
        name=name, family="locomotion", description=description, params=params,
        env_factory=locomotion_env, dataset_factory=None, ref_min_score=refs[0],
        ref_max_score=refs[1], dataset_name=data, dataset_hint=_hint(params.robot),
        minari_id=minari_twin(data),
    ))


def _shift_refs(robot: str, kind: str, level: str) -> tuple[float, float]:
    if robot in ODRL_REF:
        return ODRL_REF[robot]
    r = ROBOTS[robot]
    return r.ref_min_score, ODRL_HALFCHEETAH_MAX.get(f"{kind}-{level}", r.ref_max_score)


for _robot, _r in ROBOTS.items():
    for _quality in QUALITIES:
        _name = f"{_robot}-{_quality}-v2"
        _register(_name, LocomotionParams(robot=_robot), _name,
                  (_r.ref_min_score, _r.ref_max_score), f"D4RL {_name} (Gymnasium v5)")
    for _kind, _levels in (("friction", SCALE_LEVELS), ("gravity", SCALE_LEVELS),
                           ("kinematic", tuple(SEVERITY_LEVELS)),
                           ("morphology", tuple(SEVERITY_LEVELS))):
        for _level in _levels:
            _register(f"{_robot}-{_kind}-{_level}",
                      LocomotionParams(robot=_robot, shift=_kind, level=_level),
                      f"{_robot}-medium-v2", _shift_refs(_robot, _kind, _level),
                      f"{_robot} medium data, online {_kind} shift {_level} (ODRL)")

# the paper's names for ODRL tasks (Tab. 2)
_register("halfcheetah-med-gravity-2.0",
          LocomotionParams(robot="halfcheetah", shift="gravity", level="2.0"),
          "halfcheetah-medium-replay-v2", _shift_refs("halfcheetah", "gravity", "2.0"),
          "halfcheetah medium-replay data, online gravity x2 (ODRL)")
_register("hopper-kinematic-2.0",
          LocomotionParams(robot="hopper", shift="kinematic", level="medium"),
          "hopper-medium-v2", ODRL_REF["hopper"],
          "hopper medium data, online kinematic shift (ODRL medium: leg joint range x0.5)")
_register("walker2d-morphology-2.0",
          LocomotionParams(robot="walker2d", shift="morphology", level="medium"),
          "walker2d-medium-v2", ODRL_REF["walker2d"],
          "walker2d medium data, online morphology shift (ODRL medium: legs x0.5)")
