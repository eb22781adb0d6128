"""maze2d-style offline data: a PD controller drives the ball along planned waypoints.

As D4RL's maze2d generator: one long run with no resets, the ball steered to a randomly drawn
goal cell along a shortest path over the maze grid (breadth-first search over free cells; each
waypoint is the next cell's centre), a new goal drawn as soon as the current one is reached,
small Gaussian noise on every action, and the run cut into episodes of `episode_steps` rows
marked as time-outs (no row is terminal). Rewards are the task's own (sparse: within 0.5 of
the fixed evaluation goal), read from the environment at s_{t+1}.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from dualrl.data.dataset import Dataset
from dualrl.envs.mazes import (
    POINT_GOAL_CELLS,
    POINT_REF_SCORES,
    POINT_TIME_LIMITS,
    D4RLPointMaze,
    MazeLayout,
    get_layout,
    point_cell_center,
    point_cell_of,
)

Cell = tuple[int, int]


def distances_to(layout: MazeLayout, goal: Cell) -> dict[Cell, int]:
    """Steps from every reachable free cell to `goal` (breadth-first search, 4-neighbours)."""
    if not layout.is_free(goal):
        raise ValueError(f"goal cell {goal} is a wall of maze '{layout.name}'")
    dist = {goal: 0}
    frontier = deque([goal])
    while frontier:
        i, j = frontier.popleft()
        for cell in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if cell not in dist and layout.is_free(cell):
                dist[cell] = dist[(i, j)] + 1
                frontier.append(cell)
    return dist


def plan_path(layout: MazeLayout, start: Cell, goal: Cell) -> list[Cell]:
    """A shortest cell path from `start` to `goal`, both included."""
    dist = distances_to(layout, goal)
    if start not in dist:
        raise ValueError(f"no path from {start} to {goal} in maze '{layout.name}'")
    path = [start]
    while path[-1] != goal:
        i, j = path[-1]
        step = min(((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)),
                   key=lambda c: dist.get(c, len(dist) + 1))
        path.append(step)
    return path


class WaypointController:
    """PD control along cell-centre waypoints: a = clip(kp·(w − p) − kd·v, −1, 1).

    `set_goal` plans from the ball's current cell; a waypoint counts as passed once the ball
    is within `reach_radius` of it, and the goal is reached when the last one is passed.
    D4RL's gains (p 10, d 1) are the defaults.
    """

    def __init__(self, layout: MazeLayout, kp: float = 10.0, kd: float = 1.0,
                 reach_radius: float = 0.2):
        self.layout = layout
        self.kp, self.kd, self.reach_radius = kp, kd, reach_radius
        self.goal: Cell | None = None
        self.waypoints: list[np.ndarray] = []
        self.index = 0

    def set_goal(self, goal: Cell, position: np.ndarray) -> None:
        path = plan_path(self.layout, point_cell_of(position), goal)
        self.goal = goal
        self.waypoints = [point_cell_center(c) for c in path[1:]] or [point_cell_center(goal)]
        self.index = 0

    @property
    def done(self) -> bool:
        return self.index >= len(self.waypoints)

    def action(self, position: np.ndarray, velocity: np.ndarray) -> np.ndarray:
        """The control for this step; advances past waypoints already reached."""
        while not self.done and (
            np.linalg.norm(self.waypoints[self.index] - position) < self.reach_radius
        ):
            self.index += 1
        target = self.waypoints[min(self.index, len(self.waypoints) - 1)]
        return np.clip(self.kp * (target - position) - self.kd * velocity, -1.0, 1.0)


def collect_maze(
    maze: str,
    n_steps: int,
    seed: int = 0,
    episode_steps: int | None = None,
    action_noise: float = 0.1,
    kp: float = 10.0,
    kd: float = 1.0,
    reach_radius: float = 0.2,
    reward_type: str = "sparse",
) -> Dataset:
    """`n_steps` transitions of the waypoint controller in maze2d-`maze`-v1 (module doc).

    `episode_steps` (default: the task's time limit, 300 / 600 / 800) sets where the run is cut
    into time-out episodes; `action_noise` is the std of the Gaussian added to every action
    before clipping to [-1, 1] (D4RL's `--noisy` used 0.5).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    limit = POINT_TIME_LIMITS[get_layout(maze).name] if episode_steps is None else episode_steps
    if limit < 1:
        raise ValueError(f"episode_steps must be >= 1, got {limit}")
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0, got {action_noise}")
    env = D4RLPointMaze(maze, reward_type=reward_type)
    layout = env.layout
    goal_choices = layout.free_cells()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    noise = rng.normal(0.0, action_noise, size=(n_steps, 2)) if action_noise > 0 else None

    observations = np.empty((n_steps, 4), np.float32)
    next_observations = np.empty((n_steps, 4), np.float32)
    actions = np.empty((n_steps, 2), np.float32)
    rewards = np.empty(n_steps, np.float32)
    timeouts = np.zeros(n_steps, bool)

    controller = WaypointController(layout, kp=kp, kd=kd, reach_radius=reach_radius)
    obs, _ = env.reset(seed=seed)

    def new_goal(position: np.ndarray) -> None:
        here = point_cell_of(position)
        choices = [c for c in goal_choices if c != here]
        controller.set_goal(choices[int(rng.integers(len(choices)))], position)

    new_goal(obs[:2])
    goals_reached = 0
    for t in range(n_steps):
        action = controller.action(obs[:2], obs[2:])
        if controller.done:  # reached: head for a fresh goal from here
            goals_reached += 1
            new_goal(obs[:2])
            action = controller.action(obs[:2], obs[2:])
        if noise is not None:
            action = np.clip(action + noise[t], -1.0, 1.0)
        next_obs, reward, _, _, _ = env.step(action)
        observations[t] = obs
        actions[t] = action
        rewards[t] = reward
        next_observations[t] = next_obs
        timeouts[t] = (t + 1) % limit == 0
        obs = next_obs
    env.close()

    metadata: dict[str, Any] = {
        "collector": "waypoints",
        "maze": maze,
        "task": f"maze2d-{maze}-v1",
        "steps": int(n_steps),
        "seed": int(seed),
        "noise": float(action_noise),
        "episode_steps": int(limit),
        "kp": float(kp),
        "kd": float(kd),
        "reach_radius": float(reach_radius),
        "reward_type": reward_type,
        "eval_goal": list(POINT_GOAL_CELLS[maze]),
        "goals_reached": goals_reached,
        "frame": "d4rl-maze2d",
    }
    ref_min, ref_max = POINT_REF_SCORES[maze]
    episode_ends = timeouts.copy()
    episode_ends[-1] = True
    return Dataset(
        observations=observations,
        actions=actions,
        rewards=rewards,
        next_observations=next_observations,
        terminals=np.zeros(n_steps, bool),
        timeouts=timeouts,
        episode_ends=episode_ends,
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        metadata=metadata,
    )
