"""Registered Frozen-Lake tasks (SPEC §9): dry floor in the data, a wet one online."""

from __future__ import annotations

from dataclasses import dataclass

from dualrl.data.dataset import Dataset
from dualrl.envs.frozenlake import FrozenLakeShiftEnv
from dualrl.envs.registry import TaskSpec, register


@dataclass(frozen=True)
class FrozenLakeParams:
    map: str = "8x8"  # "4x4", "8x8" or rows joined by "/" (e.g. "SFFF/FHFH/FFFH/HFFG")
    slip_offline: float = 0.0  # slip probability while the offline data is collected
    slip_online: float = 0.3  # slip probability in the online phase and its evaluation
    slippery: str | None = None  # slippery sections: None = all tiles, "rows:3-7", 0/1 mask
    time_limit: int = 200
    data_episodes: int = 2000  # episodes of ε-greedy Q-learning for the offline data
    data_epsilon_start: float = 1.0
    data_epsilon_end: float = 0.1
    data_seed: int = 0
    obs: str = "coords"  # "coords": (row, col) in [0, 1]; "onehot": the cell as a one-hot

    def __post_init__(self) -> None:
        for name in ("slip_offline", "slip_online", "data_epsilon_start", "data_epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} (--env.{name.replace('_', '-')}) must be in [0, 1], "
                                 f"got {getattr(self, name)}")
        if self.data_episodes < 1 or self.time_limit < 1:
            raise ValueError("data_episodes and time_limit must be >= 1")


def frozenlake_env(params: FrozenLakeParams, phase: str) -> FrozenLakeShiftEnv:
    slip = params.slip_offline if phase == "offline" else params.slip_online
    return FrozenLakeShiftEnv(
        desc=params.map, slip=slip, slippery=params.slippery, time_limit=params.time_limit,
        obs=params.obs,
    )


def frozenlake_dataset(params: FrozenLakeParams) -> Dataset:
    """The offline data: every transition of an ε-greedy tabular Q-learning run offline."""
    from dualrl.collect.qlearning import collect_qlearning  # collect/ imports envs/

    return collect_qlearning(
        frozenlake_env(params, "offline"),
        n_episodes=params.data_episodes,
        epsilon_start=params.data_epsilon_start,
        epsilon_end=params.data_epsilon_end,
        seed=params.data_seed,
    )


def greedy_q_moves(q_fn, obs):
    """argmax_a Q(s, a) over the one-hot moves, for every row of `obs`."""
    import numpy as np

    from dualrl.envs.frozenlake import N_ACTIONS

    eye = np.eye(N_ACTIONS, dtype=np.float32)
    qs = np.stack([np.asarray(q_fn(obs, np.repeat(eye[a][None], len(obs), 0)))
                   for a in range(N_ACTIONS)], axis=1)
    return np.argmax(qs, axis=1)


def frozenlake_diagnose(params: FrozenLakeParams, policy, q_fn) -> dict[str, float]:
    """Exact (dynamic-programming) numbers for the current policy in the ONLINE dynamics:
    success within the time limit of the actor's greedy move, of the greedy-Q move and of
    the optimum; the discounted value of the actor's policy and of the optimum at the start
    (γ 0.99: what the critic's V(s_0) should approach)."""
    import numpy as np

    from dualrl.envs.frozenlake import (
        policy_value,
        success_probability,
        value_iteration,
    )

    env = frozenlake_env(params, "online")
    states = np.arange(env.n_states)
    obs = np.stack([env.obs_of(int(s)) for s in states])
    dyn = dict(desc=env.desc, slip=env.slip, slippery=env.slippery_mask)
    horizon = env.time_limit
    actor = np.argmax(np.asarray(policy(obs)), axis=-1)
    optimum = value_iteration(**dyn, horizon=horizon)
    out = {
        "dp_success_policy": 100.0 * success_probability(actor, **dyn, horizon=horizon),
        "dp_success_optimal": 100.0 * success_probability(optimum, **dyn, horizon=horizon),
        "dp_v_policy": float(policy_value(actor, **dyn, horizon=horizon)[env.start_state]),
        "dp_v_optimal": float(policy_value(optimum, **dyn, horizon=horizon)[env.start_state]),
    }
    if q_fn is not None:
        greedy = greedy_q_moves(q_fn, obs)
        out["dp_success_greedy_q"] = 100.0 * success_probability(greedy, **dyn,
                                                                 horizon=horizon)
        out["q_greedy_agrees"] = float((greedy == actor).mean())
    return out


# frozenlake-narrow: the offline data comes from a near-greedy slip-0 learner (ε 0.1 → 0, 500
# episodes), so it holds the online-optimal (slip 0.3) action on only 34% of that policy's
# discounted occupancy (20% with >= 10 rows) and cloning it succeeds 0% at slip 0.3. Defined
# from those numbers (docs/results/frozenlake_coverage.md, scripts/frozenlake_coverage.py)
# before any method was run on it: where epistemic uncertainty has something to find.
NARROW_DATA = dict(data_epsilon_start=0.1, data_epsilon_end=0.0, data_episodes=500)

for _name, _params, _desc in [
    ("frozenlake-shift", dict(slip_online=0.3),
     "8x8 Frozen-Lake, slip 0.0 offline -> 0.3 online"),
    ("frozenlake-noshift", dict(slip_online=0.0),
     "8x8 Frozen-Lake, slip 0.0 offline and online"),
    ("frozenlake-narrow", dict(slip_online=0.3, **NARROW_DATA),
     "8x8 Frozen-Lake, slip 0.0 -> 0.3, offline data from a near-greedy slip-0 learner"),
]:
    register(
        TaskSpec(
            name=_name,
            family="frozenlake",
            description=_desc,
            params=FrozenLakeParams(**_params),
            env_factory=frozenlake_env,
            dataset_factory=frozenlake_dataset,
            ref_min_score=0.0,
            ref_max_score=1.0,
            diagnose=frozenlake_diagnose,
        )
    )
