"""MuJoCo locomotion tasks: D4RL-parity base envs and ODRL shifts that change exactly what they
claim to, from the public factory `dualrl.envs.make`."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import dualrl.envs as envs
from dualrl.config import TrainConfig
from dualrl.data import write_d4rl
from dualrl.data.dataset import Dataset
from dualrl.envs.locomotion import ROBOTS, base_xml_path
from dualrl.envs.shifts import MORPHOLOGY_PARTS, SEVERITY_LEVELS, Shift, shifted_spec
from dualrl.o2o.loop import prepare_dataset

# fields that follow from geometry (mass, inertia, bounding boxes, ...) and may change with it
DERIVED = {"actuator_acc0", "body_inertia", "body_invweight0", "body_ipos", "body_iquat",
           "body_mass", "body_subtreemass", "bvh_aabb", "cam_poscom0", "dof_M0",
           "dof_invweight0", "dof_length", "geom_aabb", "geom_rbound", "light_poscom0",
           "body_sameframe", "geom_sameframe"}


def model_of(env) -> mujoco.MjModel:
    return env.unwrapped.model


def changed_fields(a: mujoco.MjModel, b: mujoco.MjModel) -> set[str]:
    out = set()
    for name in dir(a):
        x = getattr(a, name)
        if name.startswith("_") or not isinstance(x, np.ndarray):
            continue
        y = getattr(b, name)
        if x.shape != y.shape or not np.array_equal(x, y):
            out.add(name)
    if not np.array_equal(a.opt.gravity, b.opt.gravity):
        out.add("opt.gravity")
    return out


def base_model(robot: str) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(base_xml_path(robot)))


def test_base_envs_have_d4rl_shapes_and_walker_feet_friction():
    shapes = {"hopper": (11, 3), "halfcheetah": (17, 6), "walker2d": (17, 6)}
    for robot, (ds, da) in shapes.items():
        env = envs.make(f"{robot}-medium-v2")
        assert env.observation_space.shape == (ds,) and env.action_space.shape == (da,)
        assert env.spec.max_episode_steps == 1000
    walker = model_of(envs.make("walker2d-medium-v2"))
    right = walker.geom("foot_geom").id
    left = walker.geom("foot_left_geom").id
    assert walker.geom_friction[right, 0] == pytest.approx(0.9)  # v4-style XML, as D4RL
    assert walker.geom_friction[left, 0] == pytest.approx(1.9)


def test_unshifted_spec_compiles_to_the_gymnasium_model_exactly():
    for robot in ROBOTS:
        assert changed_fields(base_model(robot), shifted_spec(robot, None).compile()) == set()


@pytest.mark.parametrize("robot", list(ROBOTS))
@pytest.mark.parametrize("level", ["0.1", "2.0", "5.0"])
def test_friction_scales_every_geom_and_nothing_else(robot, level):
    base = base_model(robot)
    env = envs.make(f"{robot}-friction-{level}", "online")
    m = model_of(env)
    assert changed_fields(base, m) == {"geom_friction"}
    np.testing.assert_allclose(m.geom_friction, base.geom_friction * float(level), rtol=1e-12)


@pytest.mark.parametrize("robot", list(ROBOTS))
def test_gravity_scales_the_gravity_vector_only(robot):
    m = model_of(envs.make(f"{robot}-gravity-2.0", "online"))
    assert changed_fields(base_model(robot), m) == {"opt.gravity"}
    np.testing.assert_allclose(m.opt.gravity, [0.0, 0.0, -19.62])


@pytest.mark.parametrize("robot", list(ROBOTS))
@pytest.mark.parametrize("level", list(SEVERITY_LEVELS))
def test_kinematic_scales_the_joint_group_ranges_only(robot, level):
    base = base_model(robot)
    m = model_of(envs.make(f"{robot}-kinematic-{level}", "online"))
    assert changed_fields(base, m) == {"jnt_range"}
    shift = Shift("kinematic", level)
    touched = {base.joint(n).id for n in shift.parts(robot)}
    for j in range(base.njnt):
        factor = SEVERITY_LEVELS[level] if j in touched else 1.0
        np.testing.assert_allclose(m.jnt_range[j], base.jnt_range[j] * factor, atol=1e-12)


@pytest.mark.parametrize("robot", list(ROBOTS))
@pytest.mark.parametrize("part", ["default", "torso"])
def test_morphology_scales_the_limb_and_moves_what_hangs_on_it(robot, part):
    level = "medium"
    f = SEVERITY_LEVELS[level]
    shift = Shift("morphology", level, None if part == "default" else part)
    base = base_model(robot)
    m = shifted_spec(robot, shift).compile()
    assert changed_fields(base, m) - DERIVED <= {"geom_size", "geom_pos", "body_pos"}
    limbs = {base.body(n).id for n in shift.parts(robot)}
    children = {b for b in range(base.nbody) if base.body_parentid[b] in limbs and b not in limbs}
    for g in range(base.ngeom):
        if base.geom_bodyid[g] in limbs:  # capsules: radius kept, half-length scaled
            assert m.geom_size[g, 0] == pytest.approx(base.geom_size[g, 0])
            assert m.geom_size[g, 1] == pytest.approx(base.geom_size[g, 1] * f)
        else:
            np.testing.assert_array_equal(m.geom_size[g], base.geom_size[g])
            np.testing.assert_array_equal(m.geom_pos[g], base.geom_pos[g])
    for b in range(base.nbody):
        if b not in children:
            np.testing.assert_array_equal(m.body_pos[b], base.body_pos[b])
        if b not in limbs:
            assert m.body_mass[b] == pytest.approx(base.body_mass[b])
    for b in children:  # the child's hinge stays at the limb's (scaled) end
        anchor_base = base.body_pos[b] + base.jnt_pos[base.body_jntadr[b]]
        anchor_new = m.body_pos[b] + m.jnt_pos[m.body_jntadr[b]]
        parent = base.body_parentid[b]
        hinge = [j for j in range(base.njnt) if base.jnt_bodyid[j] == parent
                 and base.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
        origin = np.zeros(3) if parent == 1 else base.jnt_pos[hinge[0]]
        np.testing.assert_allclose(anchor_new - origin, f * (anchor_base - origin), atol=1e-12)
    assert sum(m.body_mass[b] for b in limbs) < sum(base.body_mass[b] for b in limbs)
    assert set(MORPHOLOGY_PARTS[robot])  # every robot has named limbs


def rollout(env, actions: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=0)
    out = [obs]
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(a)
        out.append(obs)
        if terminated or truncated:
            break
    return np.stack(out)


@pytest.mark.parametrize("task", ["hopper-friction-2.0", "hopper-gravity-0.5",  # hopper and
                                  # walker fall before a kinematic limit binds: cheetah shows it
                                  "walker2d-morphology-2.0",
                                  "halfcheetah-med-gravity-2.0", "halfcheetah-kinematic-hard"])
def test_offline_phase_is_the_base_robot_and_online_rollouts_differ(task):
    spec = envs.get_task(task)
    robot = spec.params.robot
    offline, online = envs.make(task, "offline"), envs.make(task, "online")
    assert changed_fields(base_model(robot), model_of(offline)) == set()
    assert changed_fields(model_of(offline), model_of(online))
    da = offline.action_space.shape[0]
    # a bang-bang pattern that swings every joint to its limits
    actions = np.array([np.full(da, 1.0 if (t // 10) % 2 else -1.0) for t in range(60)])
    a, b = rollout(offline, actions), rollout(online, actions)
    n = min(len(a), len(b))
    assert np.abs(a[:n] - b[:n]).max() > 1e-3 or len(a) != len(b)
    # the online env steps the same way twice (the installed model is used consistently)
    np.testing.assert_array_equal(rollout(envs.make(task, "online"), actions), b)


def test_registered_names_and_reference_scores():
    names = set(envs.task_names())
    for robot in ROBOTS:
        for q in ("medium", "medium-replay", "medium-expert"):
            assert f"{robot}-{q}-v2" in names
    assert {"halfcheetah-friction-2.0", "halfcheetah-med-gravity-2.0", "hopper-kinematic-2.0",
            "walker2d-morphology-2.0"} <= names
    hopper = envs.get_task("hopper-medium-v2")
    assert (hopper.ref_min_score, hopper.ref_max_score) == (-20.272305, 3234.3)
    assert envs.get_task("hopper-friction-2.0").ref_min_score == -26.336
    assert envs.get_task("walker2d-morphology-2.0").ref_min_score == 10.079
    assert envs.get_task("halfcheetah-friction-2.0").ref_max_score == 11255.97
    assert envs.get_task("halfcheetah-med-gravity-2.0").ref_max_score == 9509.15
    assert envs.get_task("halfcheetah-med-gravity-2.0").dataset_name == (
        "halfcheetah-medium-replay-v2")
    assert envs.get_task("hopper-kinematic-2.0").params.level == "medium"


def test_bad_shift_parameters_fail_clearly():
    with pytest.raises(ValueError, match="level must be one of"):
        envs.make("hopper-friction-2.0", "online", level="3.0")
    with pytest.raises(ValueError, match="no kinematic part 'elbow'"):
        envs.make("hopper-kinematic-easy", "online", part="elbow")
    with pytest.raises(ValueError, match="unknown robot"):
        envs.make("hopper-medium-v2", robot="ant")


def _tiny_hopper_dataset(n: int = 50) -> Dataset:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n + 1, 11)).astype(np.float32)
    timeouts = np.zeros(n, bool)
    timeouts[-1] = True
    return Dataset(observations=obs[:-1], actions=rng.uniform(-1, 1, (n, 3)),
                   rewards=rng.normal(size=n), next_observations=obs[1:],
                   terminals=np.zeros(n, bool), timeouts=timeouts)


def test_task_data_is_found_by_name_in_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("DUALRL_DATA", str(tmp_path))
    config = TrainConfig(task="hopper-friction-2.0")
    with pytest.raises(FileNotFoundError) as err:
        prepare_dataset(config, envs.make(config.task))
    message = str(err.value)
    assert str(tmp_path) in message and "hopper-medium-v2.hdf5" in message
    assert "dualrl collect sac --env hopper" in message and "--dataset PATH" in message
    write_d4rl(_tiny_hopper_dataset(), tmp_path / "hopper-medium-v2.hdf5")
    assert len(prepare_dataset(config, envs.make(config.task))) == 50
    # an explicit --dataset wins over the data directory
    other = tmp_path / "elsewhere.hdf5"
    write_d4rl(_tiny_hopper_dataset(20), other)
    explicit = TrainConfig(task="hopper-friction-2.0", dataset=str(other))
    assert len(prepare_dataset(explicit, envs.make(config.task))) == 20
