"""Offline data for Frozen-Lake shift: every transition of an ε-greedy tabular Q-learning run.

SPEC §9: the offline dataset is the behaviour of a Q-learner exploring the *offline*
environment, so it mixes random wandering (early, ε ≈ 1) with near-greedy routes (late),
much like a D4RL "replay" dataset.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dualrl.data.dataset import Dataset
from dualrl.envs.frozenlake import N_ACTIONS, FrozenLakeShiftEnv


def _unwrap(env: gym.Env) -> FrozenLakeShiftEnv:
    base = env.unwrapped
    if not isinstance(base, FrozenLakeShiftEnv):
        raise TypeError(f"collect_qlearning needs a FrozenLakeShiftEnv, got {type(base).__name__}")
    return base


def collect_qlearning(
    env: gym.Env,
    n_episodes: int = 2000,
    epsilon_start: float = 1.0,
    epsilon_end: float = 0.1,
    lr: float = 0.5,
    gamma: float = 0.99,
    seed: int = 0,
) -> Dataset:
    """Run ε-greedy tabular Q-learning in `env` and return every transition it took.

    ε decays linearly from `epsilon_start` (first episode) to `epsilon_end` (last). Greedy
    ties are broken at random so the all-zero initial table does not pin the agent to LEFT.
    Episode e resets with a seed derived from `seed`, so the data is a function of `seed`.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    base = _unwrap(env)
    n_states = base.n_states
    q = [[0.0] * N_ACTIONS for _ in range(n_states)]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    episode_seeds = np.random.SeedSequence([seed, 0]).generate_state(n_episodes)
    eye = np.eye(N_ACTIONS, dtype=np.float32)

    obs_l: list[np.ndarray] = []
    act_l: list[int] = []
    rew_l: list[float] = []
    next_l: list[np.ndarray] = []
    term_l: list[bool] = []
    tout_l: list[bool] = []
    successes = 0
    actions = range(N_ACTIONS)
    for ep in range(n_episodes):
        frac = ep / (n_episodes - 1) if n_episodes > 1 else 1.0
        eps = epsilon_start + (epsilon_end - epsilon_start) * frac
        obs, _ = env.reset(seed=int(episode_seeds[ep]))
        s = base.state
        # Pre-drawn uniforms for the episode: one rng call instead of one per step.
        u = rng.random(2 * base.time_limit + 2)
        k = 0
        done = False
        while not done:
            row = q[s]
            if u[k] < eps:
                a = int(u[k + 1] * N_ACTIONS)
            else:
                best = max(row)
                ties = [i for i in actions if row[i] == best]
                a = ties[int(u[k + 1] * len(ties))]
            k += 2
            next_obs, r, terminated, truncated, info = env.step(a)
            s2 = base.state
            target = r if terminated else r + gamma * max(q[s2])
            row[a] += lr * (target - row[a])
            obs_l.append(obs)
            act_l.append(a)
            rew_l.append(float(r))
            next_l.append(next_obs)
            term_l.append(bool(terminated))
            tout_l.append(bool(truncated))
            if info.get("is_success", False):
                successes += 1
            obs, s = next_obs, s2
            done = terminated or truncated

    n = len(obs_l)
    episode_ends = np.array(term_l) | np.array(tout_l)
    episode_ends[-1] = True
    metadata: dict[str, Any] = {
        "collector": "qlearning",
        "slip": base.slip,
        "map": "/".join(base.desc),
        "slippery": base.slippery_mask.astype(int).tolist(),
        "time_limit": base.time_limit,
        "n_episodes": int(n_episodes),
        "epsilon": [float(epsilon_start), float(epsilon_end)],
        "lr": float(lr),
        "gamma": float(gamma),
        "seed": int(seed),
        "success_rate": successes / n_episodes,
        "n_transitions": n,
    }
    return Dataset(
        observations=np.stack(obs_l),
        actions=eye[np.array(act_l, np.int64)],
        rewards=np.array(rew_l, np.float32),
        next_observations=np.stack(next_l),
        terminals=np.array(term_l, bool),
        timeouts=np.array(tout_l, bool),
        episode_ends=episode_ends,
        ref_min_score=0.0,
        ref_max_score=1.0,
        metadata=metadata,
    )
