"""Deterministic-policy evaluation on a batch of environments stepped in lock-step.

All episodes are advanced together so the policy runs once per step on a (n, ds) batch of
static shape: one compiled call per step whatever the number of episodes.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np


class Evaluator:
    def __init__(self, env_fn: Callable[[], gym.Env], n_episodes: int,
                 score_fn: Callable[[float], float]):
        self.envs = [env_fn() for _ in range(n_episodes)]
        self.n = n_episodes
        self.score_fn = score_fn
        space = self.envs[0].action_space
        self.low, self.high = np.asarray(space.low), np.asarray(space.high)
        # one-hot moves are the argmax of the action: clipping would tie large components
        self.clip = not getattr(self.envs[0].unwrapped, "one_hot_actions", False)

    def run(self, policy: Callable[[np.ndarray], np.ndarray], seed: int) -> dict[str, float]:
        """`policy` maps a (n, ds) batch of RAW observations to (n, da) actions."""
        obs = np.stack(
            [env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)]
        ).astype(np.float32)
        self.initial_observations = obs.copy()  # for V(s_0) diagnostics
        returns = np.zeros(self.n)
        lengths = np.zeros(self.n, np.int64)
        success = np.zeros(self.n, bool)
        active = np.ones(self.n, bool)
        while active.any():
            actions = np.asarray(policy(obs))
            if self.clip:
                actions = np.clip(actions, self.low, self.high)
            for i in np.flatnonzero(active):
                o, r, term, trunc, info = self.envs[i].step(actions[i])
                obs[i] = o
                returns[i] += r
                lengths[i] += 1
                success[i] |= bool(info.get("is_success", False))
                if term or trunc:
                    active[i] = False
        scores = np.array([self.score_fn(r) for r in returns])
        return {
            "score": float(scores.mean()),
            "score_std": float(scores.std()),
            "return": float(returns.mean()),
            "return_std": float(returns.std()),
            "success_rate": float(success.mean()),
            "episode_length": float(lengths.mean()),
        }
