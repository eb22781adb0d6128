"""Point-mass and Ant mazes on Gymnasium-Robotics with D4RL parity (SPEC §9).

Both wrappers simulate with Gymnasium-Robotics' maze classes (walls, actuators, MuJoCo 3) but
present D4RL's task: its observation layout, its coordinate frame, its fixed evaluation goal,
reward and time limit. Gymnasium-Robotics is imported inside the constructors only, so
`import dualrl.envs` stays fast.

Coordinate frames (why we convert, and how):
- Gymnasium-Robotics centres every maze on the origin: cell (row i, column j) of a
  rows x cols map with scaling s has its centre at x = s(j + 0.5) - s·cols/2,
  y = s·rows/2 - s(i + 0.5) (rows run towards -y).
- D4RL maze2d (`pointmaze/maze_model.py`) puts the wall of cell (i, j) at world (i + 1, j + 1)
  (x runs along rows, y along columns) and the ball's body at (1.2, 1.2), so its observation
  (the slide joints' qpos) is world - 1.2: cell (i, j) has its geometric centre at
  (i - 0.2, j - 0.2), and D4RL's named point of the cell (goal, reset cell, waypoints) is the
  integer point (i, j), 0.2 off the centre.
- D4RL antmaze (`locomotion/maze_env.py`, scaling 4) puts cell (i, j)'s centre at
  (4j - 4j_r, 4i - 4i_r), (i_r, j_r) the reset cell (1, 1): the ant starts at the origin and
  rows run towards +y.
We do convert, so D4RL's own files line up with our walls: the point maze is simulated on the
map rotated by 90° (`np.rot90`) and the ant maze on the map flipped upside down (`np.flipud`);
after that Gymnasium-Robotics' world differs from D4RL's frame by a translation only
(`frame_offset`), velocities and actions need no change, and observations are shifted by it.
"""

from __future__ import annotations

import functools
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

SUCCESS_RADIUS = 0.5  # D4RL maze2d-v1 sparse reward and antmaze-v2 success distance
POINT_BODY_OFFSET = 0.2  # D4RL maze2d: ball body at world 1.2, cell centres at world i + 1
ANT_MAZE_SCALING = 4.0


@dataclass(frozen=True)
class MazeLayout:
    """A maze grid in D4RL's orientation: `rows[i][j]` is cell (row i, column j),
    '#' a wall and '.' free floor."""

    name: str
    rows: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.rows[0])

    def is_free(self, cell: tuple[int, int]) -> bool:
        i, j = cell
        n_rows, n_cols = self.shape
        return 0 <= i < n_rows and 0 <= j < n_cols and self.rows[i][j] == "."

    def free_cells(self) -> list[tuple[int, int]]:
        return [(i, j) for i, row in enumerate(self.rows) for j, c in enumerate(row) if c == "."]

    def wall_grid(self) -> np.ndarray:
        """1 = wall, 0 = free, as Gymnasium-Robotics' `maze_map` lists."""
        return np.array([[1 if c == "#" else 0 for c in row] for row in self.rows], np.int64)


# D4RL's U_MAZE / MEDIUM_MAZE / LARGE_MAZE, which Gymnasium-Robotics ships as PointMaze_UMaze /
# _Medium / _Large (maps.U_MAZE, MEDIUM_MAZE, LARGE_MAZE; tests check they agree). The antmaze
# test maps (U_MAZE_TEST, BIG_MAZE_TEST, HARDEST_MAZE_TEST) have the same walls.
MAZE_LAYOUTS: dict[str, MazeLayout] = {
    "umaze": MazeLayout("umaze", (
        "#####",
        "#...#",
        "###.#",
        "#...#",
        "#####",
    )),
    "medium": MazeLayout("medium", (
        "########",
        "#..##..#",
        "#..#...#",
        "##...###",
        "#..#...#",
        "#.#..#.#",
        "#...#..#",
        "########",
    )),
    "large": MazeLayout("large", (
        "############",
        "#....#.....#",
        "#.##.#.#.#.#",
        "#......#...#",
        "#.####.###.#",
        "#..#.#.....#",
        "##.#.#.#.###",
        "#..#...#...#",
        "############",
    )),
}
MAZES = tuple(MAZE_LAYOUTS)

# maze2d-*-v1: the 'G' cell of D4RL's maze string is the fixed evaluation target.
POINT_GOAL_CELLS = {"umaze": (1, 1), "medium": (6, 6), "large": (7, 9)}
POINT_TIME_LIMITS = {"umaze": 300, "medium": 600, "large": 800}
POINT_REF_SCORES = {"umaze": (23.85, 161.86), "medium": (13.13, 277.39), "large": (6.7, 273.99)}

# antmaze-*-v2 test maps: reset cell 'r' and goal cell 'g'.
ANT_RESET_CELL = (1, 1)
ANT_GOAL_CELLS = {"umaze": (3, 1), "medium": (6, 6), "large": (7, 9)}
ANT_TIME_LIMITS = {"umaze": 700, "medium": 1000, "large": 1000}


def get_layout(maze: str) -> MazeLayout:
    try:
        return MAZE_LAYOUTS[maze]
    except KeyError:
        raise ValueError(f"unknown maze '{maze}'; valid mazes: {', '.join(MAZES)}") from None


# ------------------------------------------------------------------------ point maze
def point_cell_center(cell: tuple[int, int]) -> np.ndarray:
    """Geometric centre of a cell in D4RL's maze2d frame (0.2 below its integer point)."""
    return np.asarray(cell, np.float64) - POINT_BODY_OFFSET


def point_cell_of(xy: np.ndarray) -> tuple[int, int]:
    """The cell holding a D4RL maze2d position."""
    i, j = np.floor(np.asarray(xy, np.float64) + POINT_BODY_OFFSET + 0.5).astype(int)
    return int(i), int(j)


class _D4RLFrame(gym.Env):
    """A maze whose D4RL frame is the simulator's world translated by `frame_offset`."""

    frame_offset: np.ndarray

    def to_simulator(self, xy: np.ndarray) -> np.ndarray:
        return np.asarray(xy, np.float64) - self.frame_offset

    def to_d4rl(self, xy: np.ndarray) -> np.ndarray:
        return np.asarray(xy, np.float64) + self.frame_offset


class D4RLPointMaze(_D4RLFrame):
    """maze2d-{umaze,medium,large}-v1: a force-actuated ball in a maze, as D4RL's MazeEnv.

    - Observation [x, y, vx, vy] in D4RL's maze2d frame (module docstring); the goal is not
      observed: it is the fixed evaluation target, the maze's 'G' cell (D4RL's integer point).
    - Reward: sparse 1 when ‖(x, y) - goal‖ <= 0.5 (maze2d-v1), or `reward_type="dense"`:
      exp(-‖(x, y) - goal‖). Never terminates (reaching the goal does not end the episode);
      `make_point_maze` adds D4RL's time limit. `info["is_success"]` is the sparse test.
    - Reset as D4RL: a uniformly drawn free cell's integer point + U(-0.1, 0.1) per axis,
      velocity N(0, 0.1²). `options={"reset_cell": (i, j)}` picks the cell.
    - Dynamics are Gymnasium-Robotics' PointEnv (same XML parameters as D4RL: timestep 0.01,
      gear 100, action and velocity clipped to ±1 / ±5 every step).

    Known differences: MuJoCo 3 instead of mujoco-py / MuJoCo 2, so rollouts agree in the
    physics but not bit for bit; Gymnasium-Robotics' wall boxes span z ∈ [0, 0.4] where D4RL's
    span [-0.2, 0.2] (the ball, at z = 0, meets both side faces alike); D4RL's dataset files
    label each transition's reward from s_t (its relabelling script), this environment (and
    our collector) from s_{t+1}.
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 100}

    def __init__(self, maze: str = "umaze", reward_type: str = "sparse",
                 render_mode: str | None = None):
        if reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', got '{reward_type}'")
        from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv

        self.layout = get_layout(maze)
        self.maze = maze
        self.reward_type = reward_type
        self.render_mode = render_mode
        self._sim = PointMazeEnv(
            maze_map=np.rot90(self.layout.wall_grid()).tolist(),
            reward_type="sparse",
            continuing_task=True,
            reset_target=False,
            render_mode=render_mode,
        )
        self._point = self._sim.point_env
        n_rows, n_cols = self.layout.shape
        # d4rl = gymnasium-robotics world + frame_offset (rotated map, see module docstring)
        self.frame_offset = np.array(
            [n_rows / 2 - 0.5 - POINT_BODY_OFFSET, n_cols / 2 - 0.5 - POINT_BODY_OFFSET]
        )
        self.goal = np.asarray(POINT_GOAL_CELLS[maze], np.float64)
        self._reset_cells = self.layout.free_cells()
        self.action_space = self._point.action_space
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float64)
        self._sim.goal = self.to_simulator(self.goal)
        self._sim.update_target_site_pos()

    # gym API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        cell = (options or {}).get("reset_cell")
        if cell is None:
            cell = self._reset_cells[int(self.np_random.integers(len(self._reset_cells)))]
        elif not self.layout.is_free(tuple(cell)):
            raise ValueError(f"reset_cell {tuple(cell)} is a wall of maze '{self.maze}'")
        xy = np.asarray(cell, np.float64) + self.np_random.uniform(-0.1, 0.1, size=2)
        velocity = self.np_random.normal(0.0, 0.1, size=2)
        self.set_state(xy, velocity)
        obs = self._obs()
        return obs, self._info(obs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._point.step(np.asarray(action, np.float64))  # clips action and velocity, as D4RL
        obs = self._obs()
        distance = float(np.linalg.norm(obs[:2] - self.goal))
        if self.reward_type == "sparse":
            reward = float(distance <= SUCCESS_RADIUS)
        else:
            reward = float(np.exp(-distance))
        return obs, reward, False, False, self._info(obs)

    def render(self) -> Any:
        return self._sim.render()

    def close(self) -> None:
        self._sim.close()

    # helpers --------------------------------------------------------------------------
    def set_state(self, xy: np.ndarray, velocity: np.ndarray = (0.0, 0.0)) -> None:
        """Place the ball at a D4RL-frame position with a velocity."""
        self._point.set_state(self.to_simulator(xy), np.asarray(velocity, np.float64))

    def _obs(self) -> np.ndarray:
        data = self._point.data
        return np.concatenate([self.to_d4rl(data.qpos[:2]), data.qvel[:2]])

    def _info(self, obs: np.ndarray) -> dict[str, Any]:
        distance = float(np.linalg.norm(obs[:2] - self.goal))
        return {"is_success": distance <= SUCCESS_RADIUS, "goal": self.goal.copy()}


def make_point_maze(maze: str = "umaze", reward_type: str = "sparse",
                    time_limit: int | None = None, render_mode: str | None = None) -> gym.Env:
    """maze2d-<maze>-v1 with D4RL's time limit (umaze 300, medium 600, large 800)."""
    env = D4RLPointMaze(maze, reward_type=reward_type, render_mode=render_mode)
    limit = POINT_TIME_LIMITS[maze] if time_limit is None else time_limit
    return gym.wrappers.TimeLimit(env, max_episode_steps=limit)


# -------------------------------------------------------------------------- ant maze
@functools.cache
def d4rl_ant_xml() -> str:
    """Gymnasium's ant.xml changed to D4RL's antmaze ant (`locomotion/assets/ant.xml` with its
    NormalizedBoxEnv): timestep 0.02 (dt 0.1 with frame skip 5), contact solimp .8 .8 .01 /
    solref .02 1, and torque 30·a for a ∈ [-1, 1] (D4RL: ctrl range ±30, gear 1, actions
    rescaled from [-1, 1]; Gymnasium: gear 150). Written once per process to a temp file."""
    import gymnasium.envs.mujoco as mujoco_envs

    source = Path(mujoco_envs.__file__).parent / "assets" / "ant.xml"
    tree = ET.parse(source)
    root = tree.getroot()
    root.find("option").set("timestep", "0.02")
    geom_default = root.find("default/geom")
    geom_default.set("solref", ".02 1")
    geom_default.set("solimp", ".8 .8 .01")
    for motor in root.iter("motor"):
        motor.set("gear", "30")
        motor.set("ctrlrange", "-1.0 1.0")
    fd, path = tempfile.mkstemp(prefix="dualrl_d4rl_ant_", suffix=".xml")
    with os.fdopen(fd, "wb") as handle:
        tree.write(handle)
    return path


def ant_cell_center(cell: tuple[int, int]) -> np.ndarray:
    """Centre of a cell in D4RL's antmaze frame (the reset cell's centre is the origin)."""
    i, j = cell
    i_r, j_r = ANT_RESET_CELL
    return ANT_MAZE_SCALING * np.array([j - j_r, i - i_r], np.float64)


def ant_cell_of(xy: np.ndarray) -> tuple[int, int]:
    """The cell holding a D4RL antmaze position."""
    x, y = np.asarray(xy, np.float64) / ANT_MAZE_SCALING + 0.5
    return int(np.floor(y)) + ANT_RESET_CELL[0], int(np.floor(x)) + ANT_RESET_CELL[1]


class D4RLAntMaze(_D4RLFrame):
    """antmaze-{umaze,medium,large}-*-v2: the Ant in D4RL's test mazes.

    - Observation: the 29-d ant state qpos[:15] (torso x, y, z, quaternion, 8 joints) +
      qvel[:14], x, y in D4RL's antmaze frame (module docstring); the goal is not observed.
    - Start: the reset cell (1, 1), i.e. the origin, with D4RL's noise (qpos + U(-0.1, 0.1) on
      every coordinate, qvel N(0, 0.1²)). Goal, drawn at every reset as antmaze-v2 does: the
      goal cell's centre + U(0, 1) + U(0, 0.5) per axis, clipped at 0.
    - Reward 1 and termination once the torso is within 0.5 of the goal, else 0 (D4RL's
      `eval=True` envs end the episode at success, so a return is 0 or 1 and the reference
      scores are [0, 1]); no termination for an unhealthy ant. `make_ant_maze` adds the time
      limit (700 umaze, 1000 medium / large). `info["is_success"]` flags success.
    - The ant is D4RL's (`d4rl_ant_xml`), the maze blocks Gymnasium-Robotics' (maze_size_scaling
      4, height 0.5: the same boxes as D4RL's).

    Known differences: MuJoCo 3 instead of mujoco-py / MuJoCo 2 (contacts and RK4 agree in
    parameters, not bit for bit); the noise comes from the env's seeded generator where D4RL
    used NumPy's global one; Gymnasium's ant.xml differs from D4RL's only in visuals (floor
    material, a tracking camera) once the changes above are made.
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 10}

    def __init__(self, maze: str = "umaze", render_mode: str | None = None):
        from gymnasium_robotics.envs.maze.ant_maze_v5 import AntMazeEnv

        self.layout = get_layout(maze)
        self.maze = maze
        self.render_mode = render_mode
        self._sim = AntMazeEnv(
            maze_map=np.flipud(self.layout.wall_grid()).tolist(),
            reward_type="sparse",
            continuing_task=True,
            reset_target=False,
            xml_file=d4rl_ant_xml(),
            render_mode=render_mode,
        )
        self._ant = self._sim.ant_env
        n_rows, n_cols = self.layout.shape
        i_r, j_r = ANT_RESET_CELL
        s = ANT_MAZE_SCALING
        # d4rl = gymnasium-robotics world + frame_offset (flipped map, see module docstring)
        self.frame_offset = np.array([s * n_cols / 2 - s * (j_r + 0.5),
                                      s * n_rows / 2 - s * (i_r + 0.5)])
        self.goal_cell = ANT_GOAL_CELLS[maze]
        self.goal = ant_cell_center(self.goal_cell)
        self.action_space = self._ant.action_space
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(29,), dtype=np.float64)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        noise = self.np_random.uniform(0.0, 0.25 * ANT_MAZE_SCALING, size=2)
        noise += self.np_random.uniform(0.0, 0.5, size=2) * 0.25 * ANT_MAZE_SCALING
        self.goal = np.maximum(ant_cell_center(self.goal_cell) + noise, 0.0)
        qpos = self._ant.init_qpos.copy()
        qpos[:2] = self.to_simulator(ant_cell_center(ANT_RESET_CELL))
        qpos += self.np_random.uniform(-0.1, 0.1, size=qpos.shape)
        qvel = self._ant.init_qvel + 0.1 * self.np_random.standard_normal(self._ant.model.nv)
        self._ant.set_state(qpos, qvel)
        self._sim.goal = self.to_simulator(self.goal)
        self._sim.update_target_site_pos()
        obs = self._obs()
        return obs, self._info(obs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._ant.step(np.asarray(action, np.float64))  # ctrl clamped to ±1 by MuJoCo
        obs = self._obs()
        info = self._info(obs)
        success = info["is_success"]
        return obs, float(success), success, False, info

    def render(self) -> Any:
        return self._sim.render()

    def close(self) -> None:
        self._sim.close()

    def set_xy(self, xy: np.ndarray) -> None:
        """Move the torso to a D4RL-frame position, keeping the rest of the state."""
        qpos = self._ant.data.qpos.copy()
        qpos[:2] = self.to_simulator(xy)
        self._ant.set_state(qpos, self._ant.data.qvel.copy())

    def _obs(self) -> np.ndarray:
        data = self._ant.data
        qpos = data.qpos[:15].copy()
        qpos[:2] = self.to_d4rl(qpos[:2])
        return np.concatenate([qpos, data.qvel[:14]])

    def _info(self, obs: np.ndarray) -> dict[str, Any]:
        distance = float(np.linalg.norm(obs[:2] - self.goal))
        return {"is_success": distance <= SUCCESS_RADIUS, "goal": self.goal.copy()}


def make_ant_maze(maze: str = "umaze", time_limit: int | None = None,
                  render_mode: str | None = None) -> gym.Env:
    """antmaze-<maze>-v2 with D4RL's time limit (umaze 700, medium and large 1000)."""
    env = D4RLAntMaze(maze, render_mode=render_mode)
    limit = ANT_TIME_LIMITS[maze] if time_limit is None else time_limit
    return gym.wrappers.TimeLimit(env, max_episode_steps=limit)
