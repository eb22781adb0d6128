"""The maze2d waypoint collector: planning, reaching a goal in time, and the dataset it writes."""

from __future__ import annotations

import numpy as np
import pytest

import dualrl.envs.robotics_tasks  # noqa: F401  (registers the maze2d tasks)
from dualrl.collect.waypoints import WaypointController, collect_maze, plan_path
from dualrl.data import load_dataset, write_d4rl
from dualrl.envs.mazes import (
    MAZE_LAYOUTS,
    POINT_BODY_OFFSET,
    POINT_GOAL_CELLS,
    make_point_maze,
    point_cell_of,
)
from dualrl.envs.registry import find_dataset_file, get_task


def test_plan_path_is_a_shortest_walk_over_free_cells():
    umaze = MAZE_LAYOUTS["umaze"]
    assert plan_path(umaze, (3, 1), (1, 1)) == [
        (3, 1), (3, 2), (3, 3), (2, 3), (1, 3), (1, 2), (1, 1)]
    large = MAZE_LAYOUTS["large"]
    path = plan_path(large, (1, 1), (7, 9))
    assert path[0] == (1, 1) and path[-1] == (7, 9)
    for a, b in zip(path, path[1:], strict=False):
        assert large.is_free(b) and abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1
    assert len(set(path)) == len(path)
    with pytest.raises(ValueError, match="wall"):
        plan_path(umaze, (1, 1), (2, 1))


@pytest.mark.parametrize("maze, start", [("umaze", (3, 1)), ("medium", (1, 1))])
def test_controller_reaches_the_evaluation_goal_within_the_time_limit(maze, start):
    env = make_point_maze(maze)
    obs, _ = env.reset(seed=0, options={"reset_cell": start})
    controller = WaypointController(MAZE_LAYOUTS[maze])
    controller.set_goal(POINT_GOAL_CELLS[maze], obs[:2])
    truncated, success = False, False
    while not truncated:
        obs, reward, _, truncated, info = env.step(controller.action(obs[:2], obs[2:]))
        success |= info["is_success"]
        if controller.done:
            break
    assert controller.done and success and reward == 1.0 and not truncated
    assert point_cell_of(obs[:2]) == POINT_GOAL_CELLS[maze]


def _distance_to_walls(layout, xy: np.ndarray) -> np.ndarray:
    """Per position, the distance to the nearest wall box (D4RL frame: cell (i, j) spans
    [i - 0.7, i + 0.3] x [j - 0.7, j + 0.3])."""
    walls = np.array([(i, j) for i, row in enumerate(layout.rows)
                      for j, c in enumerate(row) if c == "#"], np.float64)
    low = walls - POINT_BODY_OFFSET - 0.5
    high = walls - POINT_BODY_OFFSET + 0.5
    gap = np.maximum(np.maximum(low[None] - xy[:, None], xy[:, None] - high[None]), 0.0)
    return np.linalg.norm(gap, axis=-1).min(axis=1)


def test_collected_dataset_counts_timeouts_and_stays_in_the_maze(tmp_path, monkeypatch):
    ds = collect_maze("umaze", n_steps=1000, seed=3, episode_steps=300)
    ds.validate()
    assert len(ds) == 1000 and ds.obs_dim == 4 and ds.act_dim == 2
    assert not ds.terminals.any()
    np.testing.assert_array_equal(np.flatnonzero(ds.timeouts), [299, 599, 899])
    assert ds.num_episodes == 4  # three cuts + the end of the run
    # one run without resets: every s' is the next row's s
    np.testing.assert_array_equal(ds.next_observations[:-1], ds.observations[1:])
    assert np.all(np.abs(ds.actions) <= 1.0)
    layout = MAZE_LAYOUTS["umaze"]
    positions = np.concatenate([ds.observations[:, :2], ds.next_observations[-1:, :2]])
    assert all(layout.is_free(point_cell_of(p)) for p in positions)
    assert _distance_to_walls(layout, positions.astype(np.float64)).min() >= 0.09  # ball r 0.1
    goal = np.asarray(POINT_GOAL_CELLS["umaze"], np.float32)
    sparse = (np.linalg.norm(ds.next_observations[:, :2] - goal, axis=1) <= 0.5)
    np.testing.assert_array_equal(ds.rewards, sparse.astype(np.float32))
    assert ds.rewards.sum() > 0
    assert (ds.ref_min_score, ds.ref_max_score) == (23.85, 161.86)
    meta = ds.metadata
    assert meta["collector"] == "waypoints" and meta["maze"] == "umaze"
    assert meta["steps"] == 1000 and meta["seed"] == 3 and meta["noise"] == 0.1
    assert meta["goals_reached"] >= 3
    # written under the task's name into the data directory, the task finds and accepts it
    monkeypatch.setenv("DUALRL_DATA", str(tmp_path))
    write_d4rl(ds, tmp_path / "maze2d-umaze-v1.hdf5")
    loaded = load_dataset(find_dataset_file(get_task("maze2d-umaze-v1")))
    loaded.check_compatible(4, 2, "maze2d-umaze-v1")
    np.testing.assert_array_equal(loaded.observations, ds.observations)
    np.testing.assert_array_equal(loaded.timeouts, ds.timeouts)
    assert loaded.metadata["goals_reached"] == meta["goals_reached"]


def test_collection_is_a_function_of_the_seed():
    a = collect_maze("medium", n_steps=200, seed=7)
    b = collect_maze("medium", n_steps=200, seed=7)
    c = collect_maze("medium", n_steps=200, seed=8)
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(a.actions, c.actions)
    assert not a.timeouts.any() and a.num_episodes == 1  # default cut: the 600-step limit
    quiet = collect_maze("medium", n_steps=50, seed=7, action_noise=0.0)
    assert quiet.metadata["noise"] == 0.0


def test_collector_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_steps"):
        collect_maze("umaze", n_steps=0)
    with pytest.raises(ValueError, match="episode_steps"):
        collect_maze("umaze", n_steps=10, episode_steps=0)
    with pytest.raises(ValueError, match="action_noise"):
        collect_maze("umaze", n_steps=10, action_noise=-1.0)
    with pytest.raises(ValueError, match="unknown maze"):
        collect_maze("spiral", n_steps=10)


def test_collect_maze_cli_writes_a_file_the_task_trains_on(tmp_path, capsys, monkeypatch):
    from dualrl.cli import main
    from dualrl.config import TrainConfig
    from dualrl.envs import make
    from dualrl.o2o.loop import prepare_dataset

    out = tmp_path / "maze2d-umaze-v1.hdf5"
    assert main(["collect", "maze", "--maze", "umaze", "--steps", "700", "--out", str(out)]) == 0
    assert "wrote 700 transitions" in capsys.readouterr().out
    monkeypatch.setenv("DUALRL_DATA", str(tmp_path))
    data = prepare_dataset(TrainConfig(task="maze2d-umaze-v1"), make("maze2d-umaze-v1"))
    assert len(data) == 700 and data.obs_dim == 4
    assert main(["collect", "maze", "--maze", "umaze", "--steps", "700", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["collect", "maze", "--maze", "spiral", "--out", str(tmp_path / "x.hdf5")]) == 2
    assert "valid mazes" in capsys.readouterr().err
