"""The trajectory planner learns, extracts a policy and a transition model, and distils."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.data.buffer import ReplayBuffer
from dualrl.data.dataset import Dataset
from dualrl.data.normalizer import Normalizer
from dualrl.diffusion import DistillConfig, PlannerConfig, TrajectoryPlanner, progressive_distill


def two_mode_dataset(n_episodes=1500, length=10, seed=0):
    """1-d toy: each episode commits to a = +0.5 or a = −0.5 (two modes, equally likely);
    s' = s + 0.1 a deterministically."""
    rng = np.random.default_rng(seed)
    obs, act, nxt, ends = [], [], [], []
    for _ in range(n_episodes):
        s, mode = rng.uniform(-1, 1), rng.choice([-0.5, 0.5])
        for t in range(length):
            obs.append([s])
            act.append([mode])
            s = s + 0.1 * mode
            nxt.append([s])
            ends.append(t == length - 1)
    n = len(obs)
    return Dataset(np.array(obs), np.array(act), np.zeros(n), np.array(nxt), np.zeros(n, bool),
                   np.array(ends))


@pytest.fixture(scope="module")
def toy():
    data = two_mode_dataset()
    buffer = ReplayBuffer(data, 0, Normalizer.identity(1))
    buffer_state = buffer.init_state()
    planner = TrajectoryPlanner(PlannerConfig(horizon=4, hidden=(128, 128), teacher_steps=16),
                                1, 1)
    state = planner.init(jax.random.PRNGKey(0))
    for i in range(5):
        state, loss = planner.train_chunk(state, buffer_state, jax.random.PRNGKey(i), 500, 256)
    assert np.isfinite(float(loss))
    return planner, state, buffer_state


def test_two_modes_are_learned(toy):
    planner, state, _ = toy
    s = jnp.zeros((1000, 1))
    a = np.asarray(planner.policy(state.ema_params, s, planner.noise(jax.random.PRNGKey(7),
                                                                      1000)))[:, 0]
    share_positive = (a > 0).mean()
    assert 0.35 < share_positive < 0.65, share_positive
    assert abs(a[a > 0].mean() - 0.5) < 0.1
    assert abs(a[a < 0].mean() + 0.5) < 0.1


def test_extracted_transition_predicts_next_state(toy):
    planner, state, _ = toy
    key = jax.random.PRNGKey(3)
    s = jax.random.uniform(key, (500, 1), minval=-0.8, maxval=0.8)
    a = jnp.where(jax.random.bernoulli(key, 0.5, (500, 1)), 0.5, -0.5)
    s1 = planner.transition(state.ema_params, s, a, planner.noise(jax.random.PRNGKey(4), 500))
    err = float(jnp.abs(s1 - (s + 0.1 * a)).mean())
    assert err < 0.05, err  # the state range is 1.6 wide; moves are 0.05


def test_distilled_one_step_student_reproduces_teacher(toy):
    planner, state, buffer_state = toy
    student, reports = progressive_distill(planner, state, buffer_state,
                                           DistillConfig(steps_per_round=400),
                                           jax.random.PRNGKey(9), log=lambda r: None)
    assert [r["student_steps"] for r in reports] == [8, 4, 2, 1]
    assert reports[-1]["policy_rel_mse"] < 0.05, reports[-1]
    assert reports[-1]["transition_rel_mse"] < 0.05, reports[-1]
    # the 1-step student against the 16-step teacher itself, not only the last round's
    assert reports[-1]["policy_rel_mse_to_teacher"] < 0.1, reports[-1]
    assert reports[-1]["transition_rel_mse_to_teacher"] < 0.1, reports[-1]
    s = jnp.zeros((1000, 1))
    a = np.asarray(planner.policy(student.ema_params, s,
                                  planner.noise(jax.random.PRNGKey(7), 1000), steps=1))[:, 0]
    assert 0.3 < (a > 0).mean() < 0.7  # both modes survive distillation to ONE step
    # one step = one network call: features and the linear head compose to the output
    z = planner.noise(jax.random.PRNGKey(1), 4)
    t = jnp.ones((4,))
    phi = planner.net.apply(student.ema_params, z, t, method=planner.net.features)
    out = planner.net.apply(student.ema_params, phi, method=planner.net.head)
    np.testing.assert_allclose(out, planner.net.apply(student.ema_params, z, t), rtol=1e-5)


def test_distillation_needs_power_of_two(toy):
    planner, state, buffer_state = toy
    with pytest.raises(ValueError, match="power of two"):
        progressive_distill(planner, state, buffer_state, DistillConfig(steps_per_round=1),
                            jax.random.PRNGKey(0), start_steps=6)


def test_planner_fit_and_distill_on_frozenlake(tmp_path):
    """Acceptance: `planner fit` / `distill` on Frozen-Lake data, saved and reloaded through
    the checkpoint format; the teacher policy (behaviour cloning of ε-greedy data) reaches the
    goal more often than a uniformly random policy."""
    from dualrl.cli import main
    from dualrl.envs.frozenlake import FrozenLakeShiftEnv
    from dualrl.stages import load_planner

    out = tmp_path / "planner"
    assert main(["planner", "fit", "--task", "frozenlake-noshift", "--preset", "quick",
                 "--out", str(out), "--progress", "false", "--eval-episodes", "100",
                 "--planner.train-steps", "2000", "--planner.hidden", "128,128"]) == 0
    info = json.loads((out / "planner.json").read_text())
    teacher_success = info["teacher_policy_eval"]["success_rate"]

    env = FrozenLakeShiftEnv("8x8")
    rng = np.random.default_rng(0)
    wins = 0
    for ep in range(300):
        env.reset(seed=ep)
        for _ in range(200):
            _, r, term, trunc, _ = env.step(int(rng.integers(4)))
            if term or trunc:
                wins += r > 0
                break
    random_success = wins / 300
    assert teacher_success > random_success, (teacher_success, random_success)

    assert main(["planner", "distill", "--preset", "quick", "--out", str(out),
                 "--distill.steps-per-round", "100", "--eval-episodes", "20"]) == 0
    summary = json.loads((out / "distill.json").read_text())
    assert [r["student_steps"] for r in summary["rounds"]] == [8, 4, 2, 1]
    run = load_planner(out, tag="student")
    s = jnp.asarray(run.normalizer(np.zeros((3, 2), np.float32)))
    a = run.planner.policy(run.state.ema_params, s, run.planner.noise(jax.random.PRNGKey(0), 3),
                           steps=1)
    assert a.shape == (3, 4)
