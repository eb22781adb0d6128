"""How much of the online-optimal route the offline data covers (issue 12, deliverable 5).

    python scripts/frozenlake_coverage.py [--page docs/results/frozenlake_coverage.md]

For each candidate offline data setting (slip-0 ε-greedy Q-learning with its ε schedule) this
computes, by dynamic programming and counting, BEFORE any method is run on a task built from
it:
- occupancy-weighted coverage: the share of the slip-0.3 optimal policy's discounted state
  occupancy (from S, in the online dynamics) at states where the data holds that policy's
  action at least once / at least 10 times;
- distinct (s, a) pairs in the data, and the states the data never visits;
- the success at slip 0.3 of the data's most frequent action per state (behaviour cloning
  in the limit), of the slip-0 optimum, and of the slip-0.3 optimum.
"""

from __future__ import annotations

import argparse

import numpy as np

from dualrl.envs.frozenlake import (
    FrozenLakeShiftEnv,
    success_probability,
    transition_matrix,
    value_iteration,
)
from dualrl.envs.frozenlake_tasks import NARROW_DATA, FrozenLakeParams, frozenlake_dataset
from dualrl.experiments.report import write_generated_section

CANDIDATES = {
    # label: data parameters (every other FrozenLakeParams field at its default)
    "default (ε 1.0 → 0.1, 2000 episodes)": dict(),
    "ε 0.3 → 0.02, 2000 episodes": dict(data_epsilon_start=0.3, data_epsilon_end=0.02),
    "ε 0.1 → 0.0, 2000 episodes": dict(data_epsilon_start=0.1, data_epsilon_end=0.0),
    "ε 0.1 → 0.0, 500 episodes (frozenlake-narrow)": NARROW_DATA,
}


def occupancy(policy: np.ndarray, P: np.ndarray, start: int, gamma: float = 0.99,
              horizon: int = 200) -> np.ndarray:
    """Discounted state occupancy of a deterministic policy from `start` (normalised)."""
    n = P.shape[0]
    P_pi = P[np.arange(n), policy]
    d = np.zeros(n)
    d[start] = 1.0
    occ = np.zeros(n)
    for t in range(horizon):
        occ += gamma**t * d
        d = d @ P_pi
    return occ / occ.sum()


def coverage(params: FrozenLakeParams, online_slip: float = 0.3) -> dict[str, float]:
    env = FrozenLakeShiftEnv(params.map, slip=online_slip)
    data = frozenlake_dataset(params)
    rows = np.rint(data.observations[:, 0] * (env.nrow - 1)).astype(int)
    cols = np.rint(data.observations[:, 1] * (env.ncol - 1)).astype(int)
    states = rows * env.ncol + cols
    actions = np.argmax(data.actions, axis=1)
    counts = np.zeros((env.n_states, 4), int)
    np.add.at(counts, (states, actions), 1)
    P = transition_matrix(env.desc, online_slip)
    best = value_iteration(env.desc, online_slip)
    occ = occupancy(best, P, env.start_state)
    has = counts[np.arange(env.n_states), best]
    tiles = "".join(env.desc)
    free = np.array([t in "SF" for t in tiles])
    bc = np.argmax(counts, axis=1)
    return {
        "transitions": len(data),
        "distinct (s, a)": int((counts > 0).sum()),
        "free states never visited": int((free & (counts.sum(1) == 0)).sum()),
        "coverage of π*₀.₃ (≥1 row)": 100 * float(occ[has >= 1].sum()),
        "coverage of π*₀.₃ (≥10 rows)": 100 * float(occ[has >= 10].sum()),
        "success at 0.3: data's most frequent action": 100 * success_probability(
            bc, env.desc, online_slip),
        "success at 0.3: slip-0 optimum": 100 * success_probability(
            value_iteration(env.desc, 0.0), env.desc, online_slip),
        "success at 0.3: slip-0.3 optimum": 100 * success_probability(
            best, env.desc, online_slip),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--page", default=None)
    args = parser.parse_args()
    table = {label: coverage(FrozenLakeParams(**p)) for label, p in CANDIDATES.items()}
    keys = list(next(iter(table.values())))
    lines = ["| data | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for label, row in table.items():
        cells = [f"{row[k]:.1f}" if isinstance(row[k], float) else str(row[k]) for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if args.page:
        write_generated_section(args.page, text)
    print(text)


if __name__ == "__main__":
    main()
