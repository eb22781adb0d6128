"""Frozen-Lake shift: the paper's own dynamics-shift task (SPEC §9).

A grid world whose slip probability differs between offline collection (default 0.0) and
online fine-tuning (default 0.3), optionally only on a subset of tiles ("slippery sections").
Observations are the agent's (row, col) scaled to [0, 1] (`obs="coords"`) or the one-hot
cell (`obs="onehot"`, what a tabular learner sees: no generalisation across walls and holes);
actions are 4-vectors whose argmax
is the move, so continuous-action agents (Gaussian → argmax) and one-hot datasets both fit.

The exact dynamic-programming helpers at the bottom document why the default shift is a good
test: the slip-0 optimal policy hugs holes and almost always fails at slip 0.3, while the
slip-0.3 optimum takes a safe route and almost always succeeds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3
# (d_row, d_col) per action, Gymnasium FrozenLake order.
MOVES: tuple[tuple[int, int], ...] = ((0, -1), (1, 0), (0, 1), (-1, 0))
N_ACTIONS = 4

MAPS: dict[str, list[str]] = {
    "4x4": ["SFFF", "FHFH", "FFFH", "HFFG"],
    "8x8": [
        "SFFFFFFF",
        "FFFFFFFF",
        "FFFHFFFF",
        "FFFFFHFF",
        "FFFHFFFF",
        "FHHFFFHF",
        "FHFFHFHF",
        "FFFHFFFG",
    ],
}

_TILES = frozenset("SFHG")
OBS_ENCODINGS = ("coords", "onehot")


# --------------------------------------------------------------------------- parsing
def _validate_map(rows: Sequence[str], spec: str) -> list[str]:
    rows = [str(r) for r in rows]
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError(f"map {spec!r}: empty map or empty row")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(
                f"map {spec!r}: not rectangular (row {i} has {len(r)} tiles, row 0 has {width})"
            )
        bad = set(r) - _TILES
        if bad:
            raise ValueError(
                f"map {spec!r}: row {i} has invalid tile(s) {sorted(bad)}; "
                "allowed are S (start), F (frozen), H (hole), G (goal)"
            )
    n_start = sum(r.count("S") for r in rows)
    if n_start != 1:
        raise ValueError(f"map {spec!r}: needs exactly one start tile 'S', found {n_start}")
    if not any("G" in r for r in rows):
        raise ValueError(f"map {spec!r}: needs at least one goal tile 'G'")
    return rows


def parse_map(spec: str | Sequence[str]) -> list[str]:
    """A named map ("4x4", "8x8"), rows joined by "/" ("SFFF/FHFH/FFFH/HFFG"), or a row list."""
    if isinstance(spec, str):
        text = spec.strip()
        if text in MAPS:
            return list(MAPS[text])
        if "/" not in text and not set(text) <= _TILES:
            raise ValueError(
                f"unknown map {spec!r}: use one of {sorted(MAPS)} or rows of S/F/H/G "
                "separated by '/', e.g. 'SFFF/FHFH/FFFH/HFFG'"
            )
        return _validate_map([r.strip() for r in text.split("/")], spec)
    return _validate_map(list(spec), "/".join(str(r) for r in spec))


def _parse_ranges(body: str, size: int, spec: str, axis: str) -> list[int]:
    idx: list[int] = []
    for part in body.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None:
            raise ValueError(
                f"slippery spec {spec!r}: bad {axis} range {part!r} (expected 'a-b' or 'a')"
            )
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if lo > hi or hi >= size:
            raise ValueError(
                f"slippery spec {spec!r}: {axis} range {lo}-{hi} is empty or outside 0..{size - 1}"
            )
        idx.extend(range(lo, hi + 1))
    return idx


def parse_slippery(spec: str | np.ndarray | None, desc: str | Sequence[str] = "8x8") -> np.ndarray:
    """Which tiles are slippery, as a bool (nrow, ncol) mask.

    None / "all": every tile; "none": no tile; "rows:3-7" / "cols:0-2" (inclusive, commas for
    several ranges, e.g. "rows:0-1,6-7"); or a "/"-separated 0/1 grid of the map's shape.
    """
    rows = parse_map(desc)
    nrow, ncol = len(rows), len(rows[0])
    if spec is None:
        return np.ones((nrow, ncol), bool)
    if isinstance(spec, np.ndarray):
        mask = np.asarray(spec).astype(bool)
        if mask.shape != (nrow, ncol):
            raise ValueError(f"slippery mask has shape {mask.shape}, map is {(nrow, ncol)}")
        return mask.copy()
    text = str(spec).strip().lower()
    if text == "all":
        return np.ones((nrow, ncol), bool)
    if text == "none":
        return np.zeros((nrow, ncol), bool)
    mask = np.zeros((nrow, ncol), bool)
    if text.startswith("rows:"):
        mask[_parse_ranges(text[5:], nrow, str(spec), "row"), :] = True
        return mask
    if text.startswith("cols:"):
        mask[:, _parse_ranges(text[5:], ncol, str(spec), "col")] = True
        return mask
    grid = [r.strip() for r in text.split("/")]
    if len(grid) != nrow or any(len(r) != ncol for r in grid):
        raise ValueError(
            f"slippery spec {spec!r}: expected 'all', 'none', 'rows:a-b', 'cols:a-b' or a "
            f"{nrow}x{ncol} grid of 0/1 rows separated by '/'"
        )
    for i, r in enumerate(grid):
        if set(r) - {"0", "1"}:
            raise ValueError(f"slippery spec {spec!r}: row {i} may only contain '0' and '1'")
        mask[i] = [c == "1" for c in r]
    return mask


# ------------------------------------------------------------------------ environment
class FrozenLakeShiftEnv(gym.Env):
    """Frozen Lake with a configurable slip probability and slippery sections.

    On a slippery tile the agent moves perpendicular to its intended direction with
    probability `slip` (each side slip/2); moving into a wall leaves it in place. Reaching G
    gives reward 1 and terminates, falling into H terminates with 0; after `time_limit` steps
    the episode is truncated (truncated is False when the last step also terminated, so
    terminals and time-outs never coincide in collected data).
    """

    metadata = {"render_modes": ["ansi"]}
    one_hot_actions = True  # the loop stores the executed move as a one-hot vector

    def __init__(
        self,
        desc: str | Sequence[str] = "8x8",
        slip: float = 0.0,
        slippery: str | np.ndarray | None = None,
        time_limit: int = 200,
        render_mode: str | None = None,
        obs: str = "coords",
    ):
        if not 0.0 <= float(slip) <= 1.0:
            raise ValueError(f"slip must be in [0, 1], got {slip}")
        if int(time_limit) < 1:
            raise ValueError(f"time_limit must be >= 1, got {time_limit}")
        if obs not in OBS_ENCODINGS:
            raise ValueError(f"obs must be one of {', '.join(OBS_ENCODINGS)}, got {obs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} not supported (only 'ansi')")
        self.desc: list[str] = parse_map(desc)
        self.nrow, self.ncol = len(self.desc), len(self.desc[0])
        self.n_states = self.nrow * self.ncol
        self.slip = float(slip)
        self.slippery_mask = parse_slippery(slippery, self.desc)
        self.time_limit = int(time_limit)
        self.render_mode = render_mode
        # Flat Python tuples: the step loop touches no NumPy except for the observation.
        self._tiles: tuple[str, ...] = tuple("".join(self.desc))
        self._slippery: tuple[bool, ...] = tuple(bool(x) for x in self.slippery_mask.ravel())
        self.start_state = self._tiles.index("S")
        self._row_scale = 1.0 / max(self.nrow - 1, 1)
        self._col_scale = 1.0 / max(self.ncol - 1, 1)
        self.obs_encoding = obs
        obs_dim = 2 if obs == "coords" else self.n_states
        self.observation_space = spaces.Box(0.0, 1.0, (obs_dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (N_ACTIONS,), np.float32)
        self.s = self.start_state
        self.elapsed_steps = 0
        self.last_action: int | None = None

    # -------------------------------------------------------------- helpers
    @property
    def state(self) -> int:
        """Discrete state row * ncol + col (what tabular learners index by)."""
        return self.s

    def obs_of(self, s: int) -> np.ndarray:
        if self.obs_encoding == "onehot":
            one_hot = np.zeros(self.n_states, np.float32)
            one_hot[s] = 1.0
            return one_hot
        r, c = divmod(s, self.ncol)
        return np.array([r * self._row_scale, c * self._col_scale], dtype=np.float32)

    @staticmethod
    def to_discrete(action: Any) -> int:
        """The move an action encodes: an int, or the argmax of a 4-vector of scores."""
        if isinstance(action, int | np.integer):
            a = int(action)
        else:
            arr = np.asarray(action)
            if arr.size == 1 and np.issubdtype(arr.dtype, np.integer):
                a = int(arr.reshape(()))
            elif arr.size == N_ACTIONS:
                a = int(np.argmax(arr.reshape(-1)))
            else:
                raise ValueError(
                    f"action must be an int in 0..3 or a vector of {N_ACTIONS} scores, "
                    f"got shape {arr.shape}"
                )
        if not 0 <= a < N_ACTIONS:
            raise ValueError(f"discrete action must be in 0..3, got {a}")
        return a

    # ------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.s = self.start_state
        self.elapsed_steps = 0
        self.last_action = None
        return self.obs_of(self.s), {"is_success": False, "slipped": False, "tile": "S"}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = self.to_discrete(action)
        s = self.s
        slipped = False
        move = a
        if self.slip > 0.0 and self._slippery[s]:
            u = self.np_random.random()
            if u < self.slip:
                slipped = True
                move = (a - 1) % 4 if u < 0.5 * self.slip else (a + 1) % 4
        r, c = divmod(s, self.ncol)
        dr, dc = MOVES[move]
        nr, nc = r + dr, c + dc
        if 0 <= nr < self.nrow and 0 <= nc < self.ncol:
            r, c = nr, nc
        self.s = s = r * self.ncol + c
        self.last_action = a
        self.elapsed_steps += 1
        tile = self._tiles[s]
        terminated = tile == "G" or tile == "H"
        success = tile == "G"
        truncated = (not terminated) and self.elapsed_steps >= self.time_limit
        obs = self.obs_of(s)
        info = {"is_success": success, "slipped": slipped, "tile": tile}
        return obs, 1.0 if success else 0.0, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        r, c = divmod(self.s, self.ncol)
        rows = [list(row) for row in self.desc]
        rows[r][c] = "*"
        return "\n".join("".join(row) for row in rows) + "\n"


# ------------------------------------------------------------- dynamic programming
def _desc_and_mask(
    desc: str | Sequence[str], slippery: str | np.ndarray | None
) -> tuple[list[str], np.ndarray]:
    rows = parse_map(desc)
    return rows, parse_slippery(slippery, rows)


def transition_matrix(
    desc: str | Sequence[str], slip: float, slippery_mask: str | np.ndarray | None = None
) -> np.ndarray:
    """P[s, a, s'] of the env's dynamics; H and G tiles are absorbing (self-loops)."""
    rows, mask = _desc_and_mask(desc, slippery_mask)
    nrow, ncol = len(rows), len(rows[0])
    n = nrow * ncol
    P = np.zeros((n, N_ACTIONS, n), np.float64)
    for s in range(n):
        r, c = divmod(s, ncol)
        if rows[r][c] in "HG":
            P[s, :, s] = 1.0
            continue
        p_slip = slip if mask[r, c] else 0.0
        for a in range(N_ACTIONS):
            for move, p in (
                (a, 1.0 - p_slip),
                ((a - 1) % 4, p_slip / 2),
                ((a + 1) % 4, p_slip / 2),
            ):
                if p == 0.0:
                    continue
                nr, nc = r + MOVES[move][0], c + MOVES[move][1]
                if not (0 <= nr < nrow and 0 <= nc < ncol):
                    nr, nc = r, c
                P[s, a, nr * ncol + nc] += p
    return P


def _goal_vector(rows: list[str]) -> np.ndarray:
    return np.array([ch == "G" for ch in "".join(rows)], np.float64)


def _dynamics(desc: str | Sequence[str], slip: float, slippery: str | np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P[s, a, s'], the goal indicator and the absorbing (H/G) mask of a map: what every DP
    routine below starts from."""
    rows, mask = _desc_and_mask(desc, slippery)
    absorbing = np.array([ch in "HG" for ch in "".join(rows)])
    return transition_matrix(rows, slip, mask), _goal_vector(rows), absorbing


def q_values(
    desc: str | Sequence[str] = "8x8",
    slip: float = 0.0,
    slippery: str | np.ndarray | None = None,
    gamma: float = 0.99,
    horizon: int = 200,
) -> np.ndarray:
    """Q[s, a] of the discounted `horizon`-step problem (reward 1 on entering G)."""
    P, goal, absorbing = _dynamics(desc, slip, slippery)
    # r(s, a) = P(enter G); absorbing states earn nothing and their value stays 0.
    reward = P @ goal
    reward[absorbing] = 0.0
    v = np.zeros(len(goal))
    q = reward.copy()
    for _ in range(int(horizon)):
        q = reward + gamma * (P @ v)
        q[absorbing] = 0.0
        v = q.max(axis=1)
    return q


def _first_max(q: np.ndarray, atol: float = 1e-12) -> np.ndarray:
    """Argmax over actions with ties (within atol) going to the lowest index."""
    return np.argmax(q >= q.max(axis=-1, keepdims=True) - atol, axis=-1).astype(np.int64)


def value_iteration(
    desc: str | Sequence[str] = "8x8",
    slip: float = 0.0,
    slippery: str | np.ndarray | None = None,
    gamma: float = 0.99,
    horizon: int = 200,
) -> np.ndarray:
    """Stationary greedy policy (nS,) after `horizon` discounted Bellman backups.

    Ties (common at slip 0: many shortest routes) go to the lowest action index, i.e.
    first-max over actions 0..3 (LEFT, DOWN, RIGHT, UP).
    """
    return _first_max(q_values(desc, slip, slippery, gamma, horizon))


def finite_horizon_policy(
    desc: str | Sequence[str] = "8x8",
    slip: float = 0.0,
    slippery: str | np.ndarray | None = None,
    horizon: int = 200,
) -> np.ndarray:
    """Time-indexed policy (horizon, nS) maximising P(reach G within `horizon` steps).

    Undiscounted backward induction, ties to the lowest action index. At slip 0 this
    policy idles at S (LEFT into the wall) until the shortest path exactly fits in the
    remaining steps, which is why it is so brittle under slip: this is the computation
    behind SPEC §9's 1.6% / 99.4% (0.0 → 0.3) and 92.0% / 98.7% (0.1 → 0.4).
    """
    P, goal, absorbing = _dynamics(desc, slip, slippery)
    v = goal.copy()
    policies = np.zeros((int(horizon), P.shape[0]), np.int64)
    for k in range(int(horizon) - 1, -1, -1):  # k = time step, backing up from the end
        q = P @ v
        policies[k] = _first_max(q)
        v = np.where(absorbing, goal, q.max(axis=1))
    return policies


def success_probability(
    policy: np.ndarray,
    desc: str | Sequence[str] = "8x8",
    slip: float = 0.0,
    slippery: str | np.ndarray | None = None,
    horizon: int = 200,
) -> float:
    """Exact P(reach G within `horizon` steps from S) under a deterministic policy.

    `policy` is stationary (nS,) or time-indexed (T, nS) with T >= horizon.
    """
    rows, mask = _desc_and_mask(desc, slippery)
    P = transition_matrix(rows, slip, mask)
    n = P.shape[0]
    policy = np.asarray(policy, np.int64)
    if policy.ndim == 1:
        policy = policy[None, :]
        time_indexed = False
    elif policy.ndim == 2:
        time_indexed = True
        if policy.shape[0] < int(horizon):
            raise ValueError(f"time-indexed policy covers {policy.shape[0]} < {horizon} steps")
    else:
        raise ValueError(f"policy must have shape (nS,) or (T, nS), got {policy.shape}")
    if policy.shape[1] != n:
        raise ValueError(f"policy has {policy.shape[1]} entries per step, map has {n} states")
    idx = np.arange(n)
    P_pi = P[idx, policy[0]]  # (n, n); G and H are absorbing
    d = np.zeros(n)
    d["".join(rows).index("S")] = 1.0
    for t in range(int(horizon)):
        if time_indexed:
            P_pi = P[idx, policy[t]]
        d = d @ P_pi
    return float(d @ _goal_vector(rows))


def policy_value(
    policy: np.ndarray,
    desc: str | Sequence[str] = "8x8",
    slip: float = 0.0,
    slippery: str | np.ndarray | None = None,
    gamma: float = 0.99,
    horizon: int = 200,
) -> np.ndarray:
    """V^π[s] of a stationary deterministic policy (nS,) in the discounted `horizon`-step
    problem of `q_values` (reward 1 on entering G): what a critic of π should converge to."""
    P, goal, absorbing = _dynamics(desc, slip, slippery)
    idx = np.arange(P.shape[0])
    P_pi = P[idx, np.asarray(policy, np.int64)]
    reward = P_pi @ goal
    reward[absorbing] = 0.0
    v = np.zeros(len(goal))
    for _ in range(int(horizon)):
        v = np.where(absorbing, 0.0, reward + gamma * (P_pi @ v))
    return v
