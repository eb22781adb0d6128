"""Frozen-Lake shift env (SPEC §9): dynamics, parsing, and the DP numbers behind the shift."""

from __future__ import annotations

import numpy as np
import pytest

from dualrl.envs.frozenlake import (
    DOWN,
    LEFT,
    MAPS,
    RIGHT,
    UP,
    FrozenLakeShiftEnv,
    finite_horizon_policy,
    parse_map,
    parse_slippery,
    success_probability,
    transition_matrix,
    value_iteration,
)

OPEN = "SFFFF/FFFFF/FFFFF/FFFFF/FFFFG"  # 5x5 without holes


def onehot(a: int) -> np.ndarray:
    v = np.zeros(4, np.float32)
    v[a] = 1.0
    return v


def put(env: FrozenLakeShiftEnv, r: int, c: int) -> None:
    env.s = r * env.ncol + c


# ------------------------------------------------------------------ parsing
def test_parse_named_and_inline_maps():
    assert parse_map("8x8") == MAPS["8x8"]
    assert parse_map("4x4") == ["SFFF", "FHFH", "FFFH", "HFFG"]
    assert parse_map("SFFF/FHFH/FFFH/HFFG") == MAPS["4x4"]
    assert parse_map(["SF", "FG"]) == ["SF", "FG"]


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ("SFF/FG", "rectangular"),
        ("SFX/FFG", "invalid tile"),
        ("FFF/FFG", "start"),
        ("SSF/FFG", "start"),
        ("SFF/FFF", "goal"),
        ("16x16", "unknown map"),
    ],
)
def test_bad_maps_raise(spec: str, msg: str):
    with pytest.raises(ValueError, match=msg):
        parse_map(spec)


def test_parse_slippery_forms():
    desc = MAPS["4x4"]
    assert parse_slippery(None, desc).all() and parse_slippery("all", desc).shape == (4, 4)
    assert not parse_slippery("none", desc).any()
    rows = parse_slippery("rows:1-2", desc)
    assert rows[1:3].all() and not rows[[0, 3]].any()
    cols = parse_slippery("cols:3", desc)
    assert cols[:, 3].all() and cols.sum() == 4
    assert parse_slippery("rows:0,3", desc).sum() == 8
    grid = parse_slippery("1000/0100/0010/0001", desc)
    np.testing.assert_array_equal(grid, np.eye(4, dtype=bool))


@pytest.mark.parametrize("spec", ["rows:5-6", "rows:3-1", "cols:x", "10/01", "1002/0000/0000/0000"])
def test_bad_slippery_raises(spec: str):
    with pytest.raises(ValueError, match="slippery spec"):
        parse_slippery(spec, MAPS["4x4"])


def test_bad_env_args():
    with pytest.raises(ValueError, match="slip"):
        FrozenLakeShiftEnv(slip=1.5)
    with pytest.raises(ValueError, match="time_limit"):
        FrozenLakeShiftEnv(time_limit=0)


# ----------------------------------------------------------------- dynamics
def test_spaces_and_obs_scaling():
    env = FrozenLakeShiftEnv()
    assert env.observation_space.shape == (2,) and env.action_space.shape == (4,)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and np.array_equal(obs, [0.0, 0.0])
    assert env.state == 0 and info["tile"] == "S"
    np.testing.assert_allclose(env.obs_of(7 * 8 + 7), [1.0, 1.0])
    np.testing.assert_allclose(env.obs_of(2 * 8 + 5), [2 / 7, 5 / 7], rtol=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(300):
        obs, *_rest, term, trunc, _ = env.step(rng.uniform(-1, 1, 4))
        assert env.observation_space.contains(obs)
        if term or trunc:
            env.reset()


def test_moves_and_walls():
    env = FrozenLakeShiftEnv(OPEN)
    env.reset(seed=0)
    put(env, 2, 2)
    expect = {LEFT: (2, 1), DOWN: (3, 2), RIGHT: (2, 3), UP: (1, 2)}
    for a, (r, c) in expect.items():
        put(env, 2, 2)
        obs, rew, term, trunc, info = env.step(onehot(a))
        assert divmod(env.state, env.ncol) == (r, c)
        np.testing.assert_allclose(obs, [r / 4, c / 4])
        assert (rew, term, trunc, info["slipped"]) == (0.0, False, False, False)
    put(env, 0, 0)
    env.step(UP)
    env.step(LEFT)
    assert env.state == 0  # walls keep the position
    put(env, 0, 4)
    env.step(RIGHT)
    assert env.state == 4


def test_goal_and_hole_terminate():
    env = FrozenLakeShiftEnv("4x4")
    env.reset(seed=0)
    put(env, 3, 2)
    _, r, term, trunc, info = env.step(RIGHT)
    assert (r, term, trunc, info["is_success"], info["tile"]) == (1.0, True, False, True, "G")
    env.reset()
    _, r, term, trunc, info = env.step(DOWN)  # (1,0) is F
    _, r, term, trunc, info = env.step(RIGHT)  # (1,1) is H
    assert (r, term, trunc, info["is_success"], info["tile"]) == (0.0, True, False, False, "H")


def test_truncation_at_time_limit():
    env = FrozenLakeShiftEnv(OPEN, time_limit=7)
    env.reset(seed=0)
    for t in range(1, 8):
        _, _, term, trunc, _ = env.step(LEFT)
        assert not term and trunc == (t == 7)
    env.reset()
    _, _, _, trunc, _ = env.step(LEFT)
    assert not trunc  # reset clears the step counter


def test_action_forms():
    env = FrozenLakeShiftEnv(OPEN)
    env.reset(seed=0)
    env.step(np.array([0.1, -0.5, 0.9, 0.3], np.float32))  # argmax → RIGHT
    assert env.state == 1
    env.step(np.int64(DOWN))
    assert env.state == 6
    env.step([0.0, 0.0, 0.0, 0.5])  # UP
    assert env.state == 1
    env.step(np.array([LEFT]))
    assert env.state == 0
    with pytest.raises(ValueError):
        env.step(4)
    with pytest.raises(ValueError):
        env.step(np.zeros(3))


def _slip_stats(env: FrozenLakeShiftEnv, n: int, r0: int, c0: int) -> tuple[float, float]:
    """Step RIGHT from a fixed interior tile n times; return slip rate and UP share of slips."""
    env.reset(seed=123)
    slips = ups = 0
    for _ in range(n):
        put(env, r0, c0)
        env.elapsed_steps = 0
        env.step(RIGHT)
        r, c = divmod(env.state, env.ncol)
        if (r, c) != (r0, c0 + 1):
            slips += 1
            assert (r, c) in {(r0 - 1, c0), (r0 + 1, c0)}  # perpendicular only
            ups += r == r0 - 1
    return slips / n, ups / max(slips, 1)


def test_slip_frequency_matches_config():
    rate, up_share = _slip_stats(FrozenLakeShiftEnv(OPEN, slip=0.3), 20_000, 2, 2)
    assert abs(rate - 0.3) < 0.02 and abs(up_share - 0.5) < 0.04
    rate0, _ = _slip_stats(FrozenLakeShiftEnv(OPEN, slip=0.0), 5_000, 2, 2)
    assert rate0 == 0.0


def test_slipped_flag_counts_slips_into_walls():
    env = FrozenLakeShiftEnv(OPEN, slip=1.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(RIGHT)  # at (0,0) slips UP (wall) or DOWN
    assert info["slipped"]
    assert env.state in (0, 5)


def test_slippery_mask_only_on_marked_tiles():
    env = FrozenLakeShiftEnv(OPEN, slip=1.0, slippery="rows:3-4")
    env.reset(seed=0)
    for _ in range(200):
        put(env, 1, 1)
        _, _, _, _, info = env.step(RIGHT)
        assert env.state == 1 * 5 + 2 and not info["slipped"]
        put(env, 3, 1)
        _, _, _, _, info = env.step(RIGHT)
        assert info["slipped"] and env.state in (2 * 5 + 1, 4 * 5 + 1)


def test_reset_seed_determinism():
    def rollout(seed: int) -> list[tuple[float, ...]]:
        env = FrozenLakeShiftEnv(slip=0.3)
        env.reset(seed=seed)
        out = []
        for t in range(150):
            obs, r, term, trunc, info = env.step((t % 3) + 1)
            out.append((*obs.tolist(), r, term, info["slipped"]))
            if term or trunc:
                env.reset()
        return out

    assert rollout(5) == rollout(5)
    assert rollout(5) != rollout(6)


def test_render_ansi():
    env = FrozenLakeShiftEnv("4x4", render_mode="ansi")
    env.reset(seed=0)
    assert env.render().splitlines()[0] == "*FFF"


# ----------------------------------------------------------- dynamic programming
def test_transition_matrix_is_stochastic_and_absorbing():
    P = transition_matrix("8x8", 0.3)
    np.testing.assert_allclose(P.sum(-1), 1.0)
    flat = "".join(MAPS["8x8"])
    for s, ch in enumerate(flat):
        if ch in "HG":
            assert np.all(P[s, :, s] == 1.0)
    # (0,0) RIGHT: 0.7 → (0,1), 0.15 UP wall → stay, 0.15 DOWN → (1,0)
    np.testing.assert_allclose(P[0, RIGHT, [0, 1, 8]], [0.15, 0.7, 0.15])
    Pm = transition_matrix("8x8", 0.3, "rows:4-7")
    assert Pm[0, RIGHT, 1] == 1.0


def test_env_matches_transition_matrix():
    env = FrozenLakeShiftEnv(slip=0.4)
    P = transition_matrix("8x8", 0.4)
    env.reset(seed=1)
    counts = np.zeros(64)
    n = 8000
    for _ in range(n):
        put(env, 3, 3)
        env.step(UP)
        counts[env.state] += 1
    np.testing.assert_allclose(counts / n, P[27, UP], atol=0.02)


def test_dp_success_numbers():
    """The shift is hard by design: the slip-0 optimum fails at slip 0.3, its optimum does not.

    Measured (stationary, γ=0.99, first-max ties): 0.1427 vs 0.9729. Time-indexed,
    undiscounted within 200 steps (SPEC §9's numbers): 0.0161 vs 0.9938.
    """
    pi_off = value_iteration("8x8", 0.0)
    pi_on = value_iteration("8x8", 0.3)
    assert success_probability(pi_off, "8x8", 0.0) == pytest.approx(1.0)
    off_at_on = success_probability(pi_off, "8x8", 0.3)
    on_at_on = success_probability(pi_on, "8x8", 0.3)
    assert 0.10 < off_at_on < 0.18
    assert 0.96 < on_at_on < 0.98
    fh_off = finite_horizon_policy("8x8", 0.0)
    fh_on = finite_horizon_policy("8x8", 0.3)
    assert success_probability(fh_off, "8x8", 0.3) == pytest.approx(0.016, abs=0.001)
    assert success_probability(fh_on, "8x8", 0.3) == pytest.approx(0.994, abs=0.001)


def test_success_probability_rejects_bad_policy():
    with pytest.raises(ValueError):
        success_probability(np.zeros(10, int), "8x8", 0.3)
    with pytest.raises(ValueError):
        success_probability(np.zeros((5, 64), int), "8x8", 0.3, horizon=200)


def test_onehot_observations_name_the_cell():
    env = FrozenLakeShiftEnv("4x4", obs="onehot")
    assert env.observation_space.shape == (16,)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (16,) and obs[env.start_state] == 1.0 and obs.sum() == 1.0
    obs, *_ = env.step(RIGHT)
    assert obs[1] == 1.0 and obs.sum() == 1.0
    with pytest.raises(ValueError, match="obs"):
        FrozenLakeShiftEnv("4x4", obs="pixels")


def test_policy_value_is_the_discounted_success_of_the_policy():
    """V^π on an open 5x5 at slip 0: γ^(steps to G - 1) from every cell the policy leads
    to the goal from; the value of the optimum is the max of the DP Q-values."""
    from dualrl.envs.frozenlake import policy_value, q_values

    optimum = value_iteration(OPEN, 0.0)
    v = policy_value(optimum, OPEN, 0.0)
    assert v[0] == pytest.approx(0.99 ** 7)  # 8 moves from S to G; reward on entering G
    assert np.allclose(v, q_values(OPEN, 0.0).max(axis=1))
    left = np.full(25, LEFT)  # never reaches G
    assert np.allclose(policy_value(left, OPEN, 0.0), 0.0)


def test_frozenlake_diagnose_scores_policies_exactly():
    from dualrl.envs.frozenlake_tasks import FrozenLakeParams, frozenlake_diagnose

    params = FrozenLakeParams(slip_online=0.3)
    optimum = value_iteration("8x8", 0.3)
    env = FrozenLakeShiftEnv("8x8")
    obs_to_state = {tuple(env.obs_of(s)): s for s in range(64)}

    def policy(obs):
        return np.stack([onehot(optimum[obs_to_state[tuple(o)]]) for o in obs])

    def q_fn(obs, act):  # a critic whose greedy move is always LEFT
        return act[:, LEFT]

    out = frozenlake_diagnose(params, policy, q_fn)
    assert out["dp_success_policy"] == pytest.approx(out["dp_success_optimal"])
    assert 96 < out["dp_success_optimal"] < 98
    assert out["dp_success_greedy_q"] == pytest.approx(0.0)
    assert out["q_greedy_agrees"] == pytest.approx((optimum == LEFT).mean())
