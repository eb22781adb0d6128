"""ODRL dynamics shifts (Lyu et al. 2024), built from Gymnasium's own XMLs with `mujoco.MjSpec`.

ODRL ships edited copies of gym's v3 XMLs; they do not load in current MuJoCo, so we apply the
same kinds of edits to the XML Gymnasium ships and compile that:
- friction x level (0.1, 0.5, 2.0, 5.0): every geom's friction coefficients (the floor's too,
  so every contact's friction, which MuJoCo takes as the max over the pair, scales by level);
- gravity x level (same levels): the gravity vector (2.0 gives -19.62);
- kinematic at easy / medium / hard: the range of a joint group multiplied by 0.8 / 0.5 / 0.2
  (a "broken" joint that cannot swing as far; both ends scale, so a range [-150, 0] deg
  becomes [-75, 0] at medium);
- morphology at easy / medium / hard: the length of a limb multiplied by 0.8 / 0.5 / 0.2. Its
  capsules shrink towards the limb's joint anchor, child bodies move with the limb's end, and
  masses and inertias follow from the new geometry (inertiafromgeom). ODRL's exact per-XML
  numbers are not reproduced; the levels are ours, chosen like the kinematic ones.
The paper's "hopper-kinematic-2.0" and "walker2d-morphology-2.0" name no ODRL level: we treat
them as medium.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np

from dualrl.envs.locomotion import base_xml_path, get_robot

SHIFT_KINDS = ("friction", "gravity", "kinematic", "morphology")
SCALE_LEVELS = ("0.1", "0.5", "2.0", "5.0")  # friction, gravity
SEVERITY_LEVELS = {"easy": 0.8, "medium": 0.5, "hard": 0.2}  # kinematic, morphology

# ODRL's joint groups (kinematic) and limbs (morphology) per robot; the first is the default.
KINEMATIC_PARTS: dict[str, dict[str, tuple[str, ...]]] = {
    "hopper": {"legjnt": ("leg_joint",), "footjnt": ("foot_joint",),
               "thighjnt": ("thigh_joint",)},
    "halfcheetah": {"footjnt": ("bfoot", "ffoot"), "thighjnt": ("bthigh", "fthigh")},
    "walker2d": {"footjnt": ("foot_joint", "foot_left_joint"),
                 "thighjnt": ("thigh_joint", "thigh_left_joint")},
}
MORPHOLOGY_PARTS: dict[str, dict[str, tuple[str, ...]]] = {
    "hopper": {"foot": ("foot",), "torso": ("torso",), "thigh": ("thigh",)},
    "halfcheetah": {"thigh": ("bthigh", "fthigh"), "torso": ("torso",)},
    "walker2d": {"leg": ("leg", "leg_left"), "torso": ("torso",)},
}


@dataclass(frozen=True)
class Shift:
    """One ODRL shift: `kind` at `level`, on `part` (kinematic / morphology; None = default)."""

    kind: str
    level: str
    part: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SHIFT_KINDS:
            raise ValueError(f"unknown shift '{self.kind}'; valid: {', '.join(SHIFT_KINDS)}")
        levels = SCALE_LEVELS if self.kind in ("friction", "gravity") else tuple(SEVERITY_LEVELS)
        if self.level not in levels:
            raise ValueError(f"{self.kind} shift level must be one of {', '.join(levels)}, "
                             f"got '{self.level}'")

    @property
    def factor(self) -> float:
        if self.kind in ("friction", "gravity"):
            return float(self.level)
        return SEVERITY_LEVELS[self.level]

    def parts(self, robot: str) -> tuple[str, ...]:
        """The joint (kinematic) or body (morphology) names this shift edits."""
        table = (KINEMATIC_PARTS if self.kind == "kinematic" else MORPHOLOGY_PARTS)[robot]
        part = self.part or next(iter(table))
        if part not in table:
            raise ValueError(f"{robot} has no {self.kind} part '{part}'; valid: "
                             f"{', '.join(table)}")
        return table[part]


def shifted_spec(robot: str, shift: Shift | None) -> mujoco.MjSpec:
    """Gymnasium's D4RL-parity XML of `robot` with `shift` applied (None: unchanged)."""
    spec = mujoco.MjSpec.from_file(str(base_xml_path(robot)))
    if shift is None:
        return spec
    f = shift.factor
    if shift.kind == "friction":
        for geom in spec.geoms:
            geom.friction = np.asarray(geom.friction) * f
    elif shift.kind == "gravity":
        spec.option.gravity = np.asarray(spec.option.gravity) * f
    elif shift.kind == "kinematic":
        for name in shift.parts(get_robot(robot).name):
            joint = spec.joint(name)
            if joint is None:
                raise ValueError(f"{robot} XML has no joint '{name}'")
            joint.range = np.asarray(joint.range) * f
    else:
        _fix_densities(spec)
        for name in shift.parts(get_robot(robot).name):
            _scale_limb(spec, name, f)
    return spec


def _fix_densities(spec: mujoco.MjSpec) -> None:
    """Replace `settotalmass` (halfcheetah: 14 kg) by the density it implies, so a shrunk limb
    gets lighter while every other body keeps its mass (settotalmass would spread the lost
    mass over the other bodies)."""
    total = spec.compiler.settotalmass
    if total <= 0:
        return
    spec.compiler.settotalmass = -1
    k = total / float(spec.compile().body_mass.sum())
    for geom in spec.geoms:
        geom.density = geom.density * k


def _scale_limb(spec: mujoco.MjSpec, body_name: str, f: float) -> None:
    """Shrink/grow body `body_name` by `f` about its joint anchor (its origin if it has none
    or is the root): capsule half-lengths, geom offsets and child attachment points scale."""
    body = spec.body(body_name)
    if body is None:
        raise ValueError(f"XML has no body '{body_name}'")
    hinges = [j for j in body.joints if j.type == mujoco.mjtJoint.mjJNT_HINGE]
    is_root = any(j.type == mujoco.mjtJoint.mjJNT_SLIDE for j in body.joints)
    anchor = np.zeros(3) if is_root or not hinges else np.asarray(hinges[0].pos, float)
    for geom in body.geoms:
        fromto = np.asarray(geom.fromto, float)
        if np.isfinite(fromto).all():  # capsule given by its end points
            geom.fromto = np.concatenate([anchor + f * (fromto[:3] - anchor),
                                          anchor + f * (fromto[3:] - anchor)])
        else:
            geom.pos = anchor + f * (np.asarray(geom.pos, float) - anchor)
            size = np.asarray(geom.size, float).copy()
            size[1] *= f  # capsule half-length
            geom.size = size
    for child in body.bodies:
        child_hinges = [j for j in child.joints if j.type == mujoco.mjtJoint.mjJNT_HINGE]
        joint_pos = np.asarray(child_hinges[0].pos, float) if child_hinges else np.zeros(3)
        attach = np.asarray(child.pos, float) + joint_pos  # where the child hangs on the limb
        child.pos = anchor + f * (attach - anchor) - joint_pos


def install_model(env: gym.Env, model: mujoco.MjModel) -> gym.Env:
    """Swap the MuJoCo model of a Gymnasium MujocoEnv for `model` (same joints and actuators).

    Compiling the edited MjSpec directly is exact, where a round trip through `to_xml` would
    perturb every number in the model by up to 1e-6; so the online environment is the
    Gymnasium environment with the shifted model installed, and the offline one is untouched.
    """
    base = env.unwrapped
    old = base.model
    if (model.nq, model.nv, model.nu) != (old.nq, old.nv, old.nu):
        raise ValueError("the shifted model must keep the joints and actuators of the base")
    model.vis.global_.offwidth = old.vis.global_.offwidth
    model.vis.global_.offheight = old.vis.global_.offheight
    data = mujoco.MjData(model)
    base.model, base.data = model, data
    base.init_qpos = data.qpos.ravel().copy()
    base.init_qvel = data.qvel.ravel().copy()
    renderer = getattr(base, "mujoco_renderer", None)
    if renderer is not None:
        renderer.model, renderer.data = model, data
    return env
