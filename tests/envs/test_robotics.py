"""Gymnasium-Robotics tasks with D4RL parity: maze frames, observations, success radius, time
limits, the Adroit reward sign fix, and the registered tasks."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import dualrl.envs as envs
import dualrl.envs.robotics_tasks as robotics_tasks
from dualrl.envs.adroit import HANDS, distance_sign_flipped, make_adroit_env
from dualrl.envs.mazes import (
    ANT_GOAL_CELLS,
    ANT_TIME_LIMITS,
    MAZE_LAYOUTS,
    MAZES,
    POINT_GOAL_CELLS,
    POINT_TIME_LIMITS,
    D4RLAntMaze,
    ant_cell_center,
    ant_cell_of,
    make_ant_maze,
    make_point_maze,
    point_cell_of,
)
from dualrl.envs.registry import find_dataset_file


# ------------------------------------------------------------------------ layouts
def test_layouts_are_gymnasium_robotics_point_maze_maps():
    from gymnasium_robotics.envs.maze import maps

    theirs = {"umaze": maps.U_MAZE, "medium": maps.MEDIUM_MAZE, "large": maps.LARGE_MAZE}
    for maze, grid in theirs.items():
        walls = [[1 if c == 1 else 0 for c in row] for row in grid]
        assert MAZE_LAYOUTS[maze].wall_grid().tolist() == walls


# --------------------------------------------------------------------- point maze
@pytest.mark.parametrize("maze", MAZES)
def test_point_maze_observation_reset_cell_and_time_limit(maze):
    env = make_point_maze(maze)
    assert env.observation_space.shape == (4,) and env.action_space.shape == (2,)
    assert env._max_episode_steps == POINT_TIME_LIMITS[maze]
    base = env.unwrapped
    np.testing.assert_array_equal(base.goal, POINT_GOAL_CELLS[maze])
    for seed in range(5):  # D4RL: a free cell's integer point + U(-0.1, 0.1)
        obs, _ = env.reset(seed=seed)
        assert obs.shape == (4,)
        cell = tuple(int(v) for v in np.round(obs[:2]))
        assert MAZE_LAYOUTS[maze].is_free(cell)
        assert np.all(np.abs(obs[:2] - cell) <= 0.1)
    obs, _ = env.reset(seed=0, options={"reset_cell": (1, 2)})
    assert np.all(np.abs(obs[:2] - (1, 2)) <= 0.1)


def test_point_maze_walls_sit_where_d4rl_puts_them():
    # D4RL: wall of cell (i, j) centred at world (i+1, j+1), observation = world - 1.2; cell
    # (1, 1)'s walls at rows/columns 0 have their faces at 0.3, the ball's radius is 0.1.
    env = make_point_maze("umaze")
    base = env.unwrapped
    env.reset(seed=0, options={"reset_cell": (1, 1)})
    for _ in range(150):
        obs, *_ = env.step(np.array([-1.0, -1.0]))
    np.testing.assert_allclose(obs[:2], [0.4, 0.4], atol=0.01)
    # pushing "up" in x from (1, 1) meets the wall of cell (2, 1): face at 1.3
    base.set_state(np.array([1.0, 0.8]))
    for _ in range(150):
        obs, *_ = env.step(np.array([1.0, -1.0]))
    np.testing.assert_allclose(obs[:2], [1.2, 0.4], atol=0.01)
    assert point_cell_of(obs[:2]) == (1, 1)


def test_point_maze_sparse_success_radius_and_no_termination():
    env = make_point_maze("medium")
    base = env.unwrapped
    env.reset(seed=0)
    goal = base.goal
    base.set_state(goal + [0.48, 0.0])
    obs, reward, terminated, truncated, info = env.step(np.zeros(2))
    assert reward == 1.0 and info["is_success"] and not terminated and not truncated
    base.set_state(goal + [0.0, -0.53])
    obs, reward, terminated, _, info = env.step(np.zeros(2))
    assert reward == 0.0 and not info["is_success"] and not terminated
    dense = make_point_maze("medium", reward_type="dense")
    dense.reset(seed=0)
    dense.unwrapped.set_state(goal + [0.3, 0.4])
    obs, reward, *_ = dense.step(np.zeros(2))
    assert reward == pytest.approx(np.exp(-np.linalg.norm(obs[:2] - goal)))


def test_point_maze_truncates_at_d4rl_time_limit():
    env = make_point_maze("umaze")
    env.reset(seed=1)
    for t in range(1, 301):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        assert truncated == (t == 300)


# ----------------------------------------------------------------------- ant maze
@pytest.mark.parametrize("maze", MAZES)
def test_ant_maze_frame_walls_reset_and_goal(maze):
    env = make_ant_maze(maze)
    base = env.unwrapped
    assert env.observation_space.shape == (29,) and env.action_space.shape == (8,)
    assert env._max_episode_steps == ANT_TIME_LIMITS[maze]
    # every maze block, converted to D4RL's frame, sits at D4RL's (4j - 4, 4i - 4)
    model = base._ant.model
    blocks = sorted(
        tuple(np.round(base.to_d4rl(model.geom_pos[g][:2]), 6))
        for g in range(model.ngeom)
        if (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or "").startswith("block")
    )
    layout = MAZE_LAYOUTS[maze]
    expected = sorted(
        tuple(np.round(ant_cell_center((i, j)), 6))
        for i, row in enumerate(layout.rows) for j, c in enumerate(row) if c == "#"
    )
    assert blocks == expected
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        assert obs.shape == (29,)
        assert np.all(np.abs(obs[:2]) <= 0.1)  # D4RL's reset cell (1, 1) is the origin
        assert ant_cell_of(obs[:2]) == (1, 1)
        goal_center = ant_cell_center(ANT_GOAL_CELLS[maze])
        offset = info["goal"] - goal_center
        assert np.all((offset >= 0) & (offset <= 1.5))
        assert ant_cell_of(info["goal"]) == ANT_GOAL_CELLS[maze]
    obs, *_ = env.step(env.action_space.sample())
    qpos = base._ant.data.qpos
    np.testing.assert_allclose(obs[2:15], qpos[2:15])
    np.testing.assert_allclose(obs[:2], qpos[:2] + base.frame_offset)


def test_ant_maze_success_ends_the_episode_with_reward_one():
    env = make_ant_maze("umaze")
    base = env.unwrapped
    assert isinstance(base, D4RLAntMaze)
    model = base._ant.model
    assert model.opt.timestep == pytest.approx(0.02) and base._ant.dt == pytest.approx(0.1)
    np.testing.assert_array_equal(model.actuator_gear[:, 0], 30.0)
    _, info = env.reset(seed=0)
    base.set_xy(info["goal"] + [-0.8, 0.0])
    _, reward, terminated, _, info = env.step(np.zeros(8))
    assert reward == 0.0 and not terminated and not info["is_success"]
    base.set_xy(info["goal"] + [-0.3, 0.0])
    _, reward, terminated, _, info = env.step(np.zeros(8))
    assert reward == 1.0 and terminated and info["is_success"]


# ------------------------------------------------------------------------- adroit
def test_adroit_horizons():
    assert HANDS["pen"].horizon == 100
    pen = make_adroit_env("pen")
    assert pen._max_episode_steps == 100
    pen.reset(seed=0)
    for t in range(1, 101):
        _, _, terminated, truncated, _ = pen.step(np.zeros(pen.action_space.shape))
        if terminated:  # D4RL: a dropped pen ends the episode
            base = pen.unwrapped
            assert base.data.xpos[base.obj_body_id][2] < 0.075
            break
        assert truncated == (t == 100)
    assert make_adroit_env("door")._max_episode_steps == 200


def _name_id(model, kind, name):
    return mujoco.mj_name2id(model, kind, name)


@pytest.mark.parametrize("hand", ["door", "hammer", "relocate"])
def test_adroit_reward_gets_d4rl_distance_sign(hand):
    assert distance_sign_flipped()  # gymnasium-robotics 1.4.2 is installed
    env = make_adroit_env(hand)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    base = env.unwrapped
    model, data = base.model, base.data
    palm_site = _name_id(model, mujoco.mjtObj.mjOBJ_SITE, "S_grasp")
    for _ in range(3):
        _, reward, _, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        if hand == "door":
            obj = data.site_xpos[_name_id(model, mujoco.mjtObj.mjOBJ_SITE, "S_handle")]
        else:
            obj = data.xpos[_name_id(model, mujoco.mjtObj.mjOBJ_BODY, "Object")]
        distance = np.linalg.norm(data.site_xpos[palm_site] - obj)
        assert reward == pytest.approx(info["reward_gymnasium_robotics"] - 0.2 * distance)
        if hand == "door":  # D4RL's (mj_envs') door reward, term by term
            hinge = data.qpos[base.door_hinge_addrs]
            d4rl = -0.1 * distance - 0.1 * (hinge - 1.57) ** 2 - 1e-5 * np.sum(data.qvel**2)
            d4rl += 2.0 * (hinge > 0.2) + 8.0 * (hinge > 1.0) + 10.0 * (hinge > 1.35)
            assert reward == pytest.approx(d4rl)
    unfixed = make_adroit_env(hand, fix_reward=False)
    unfixed.reset(seed=0)
    _, reward, _, _, info = unfixed.step(np.zeros(unfixed.action_space.shape))
    assert reward == info["reward_gymnasium_robotics"]


def test_pen_reward_is_unchanged():
    env = make_adroit_env("pen")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(env.action_space.shape))
    assert reward == info["reward_gymnasium_robotics"]


# -------------------------------------------------------------------------- tasks
REFS = {
    "maze2d-umaze-v1": (23.85, 161.86),
    "maze2d-medium-v1": (13.13, 277.39),
    "maze2d-large-v1": (6.7, 273.99),
    "pen-cloned-v1": (96.262799, 3076.833),
    "door-cloned-v1": (-56.512833, 2880.569),
    "hammer-cloned-v1": (-274.856578, 12794.135),
    "relocate-cloned-v1": (-6.425911, 4233.878),
    **{name: (0.0, 1.0) for name in robotics_tasks.ANTMAZE_DATA},
}


def test_tasks_registered_with_reference_scores():
    assert len(robotics_tasks.ANTMAZE_DATA) == 6
    for name, (ref_min, ref_max) in REFS.items():
        spec = envs.get_task(name)
        assert (spec.ref_min_score, spec.ref_max_score) == (ref_min, ref_max)
        family = "adroit" if name.endswith("-cloned-v1") else name.split("-")[0]
        assert spec.family == family
        assert spec.dataset_factory is None and spec.dataset_name == name
        assert spec.dataset_hint
    for name, dims in {"maze2d-large-v1": (4, 2), "antmaze-medium-play-v2": (29, 8),
                       "door-cloned-v1": (39, 28)}.items():
        for phase in envs.PHASES:  # no shift: the same environment in both phases
            env = envs.make(name, phase=phase)
            assert (env.observation_space.shape[0], env.action_space.shape[0]) == dims
    assert envs.make("maze2d-umaze-v1", time_limit=50)._max_episode_steps == 50
    assert envs.make("pen-cloned-v1")._max_episode_steps == 100
    with pytest.raises(ValueError, match="unknown maze"):
        envs.make("maze2d-umaze-v1", maze="huge")
    with pytest.raises(ValueError, match="reward_type"):
        envs.make("maze2d-umaze-v1", reward_type="shaped")


@pytest.mark.parametrize("name, needle", [
    ("maze2d-medium-v1", "dualrl collect maze --maze medium --steps 1000000"),
    ("antmaze-large-diverse-v2",
     "Ant_maze_hardest-maze_noisy_multistart_True_multigoal_True_sparse_fixed.hdf5"),
    ("relocate-cloned-v1", "D4RL/relocate/cloned-v2"),
])
def test_missing_data_names_the_directory_and_how_to_get_it(name, needle, tmp_path, monkeypatch):
    monkeypatch.setenv("DUALRL_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        find_dataset_file(envs.get_task(name))
    message = str(err.value)
    assert str(tmp_path) in message and f"{name}.hdf5" in message and needle in message
