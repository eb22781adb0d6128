"""Diffuser and D-Diffuser: value guidance in the shared ancestral sampler, the guide's
bootstrapped segment returns, the segments the loop hands over, the distilled planner, and
runs of the one loop (resume)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.algos.diffuser import Diffuser, DiffuserConfig
from dualrl.config import LoopConfig, TrainConfig
from dualrl.data.buffer import ReplayBuffer, Segments
from dualrl.data.dataset import Dataset
from dualrl.data.normalizer import Normalizer
from dualrl.diffusion.samplers import Guidance, ddpm_sample
from dualrl.diffusion.schedules import Schedule

DIM, K = 4, 20
SCHEDULE = Schedule(kind="cosine")


def _gaussian_denoiser(z: jax.Array, t: jax.Array) -> jax.Array:
    """The exact x̂ for data x ~ N(0, I) under a variance-preserving schedule: E[x | z] = α z."""
    alpha, _ = SCHEDULE.alpha_sigma(t)
    return alpha[:, None] * z


def _sample(guidance: Guidance | None, n: int = 4096):
    mask = jnp.zeros(DIM, bool).at[0].set(True)  # slot 0 is the condition
    values = jnp.full((n, DIM), 0.5)
    noise = jax.random.normal(jax.random.PRNGKey(0), (n, DIM))
    return ddpm_sample(_gaussian_denoiser, SCHEDULE, "x0", jax.random.PRNGKey(1), noise, K,
                       mask, values, None, guidance)


def test_guidance_raises_the_value_of_samples_and_keeps_the_inpainted_condition():
    """Unguided samples of N(0, I) have value ≈ 0 (value = the last coordinate); guided by
    its gradient they move up; the inpainted slot stays exactly the condition."""
    value = lambda z, t: z[:, -1]  # noqa: E731
    plain = _sample(None)
    guided = _sample(Guidance(value=value, scale=0.5, steps=2, stop_last=2))
    assert abs(float(plain[:, -1].mean())) < 0.05
    assert float(guided[:, -1].mean()) > float(plain[:, -1].mean()) + 0.3
    # the other free coordinates are not steered
    np.testing.assert_allclose(guided[:, 1:3].mean(0), 0.0, atol=0.06)
    assert np.all(np.asarray(guided[:, 0]) == 0.5) and np.all(np.asarray(plain[:, 0]) == 0.5)


def test_guidance_stops_on_the_last_steps():
    """With `stop_last` = K no step is guided: the samples equal the unguided ones."""
    value = lambda z, t: z[:, -1]  # noqa: E731
    np.testing.assert_allclose(_sample(Guidance(value=value, scale=0.5, stop_last=K)),
                               _sample(None), atol=1e-6)


def test_segment_returns_bootstrap_from_the_last_real_step():
    """G = Σ γ^h r_h over the real steps + γ^n (1 − d) V(s') of the last real step."""
    agent = Diffuser(DiffuserConfig(horizon=3, hidden=(8,), gamma=0.5))
    state = agent.init(jax.random.PRNGKey(0), 2, 1)
    obs = jnp.zeros((2, 3, 2))
    nxt = jnp.stack([jnp.ones((3, 2)), 2 * jnp.ones((3, 2))])
    seg = Segments(observations=obs, actions=jnp.zeros((2, 3, 1)),
                   rewards=jnp.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]),
                   mask=jnp.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]), next_observations=nxt,
                   dones=jnp.array([[0.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    v = agent.value_net.apply(state.value.params, nxt[:, -1])
    g = agent.segment_returns(state.value.params, seg)
    np.testing.assert_allclose(g, [1.75 + 0.125 * float(v[0]), 1.5], rtol=1e-6)


def test_segments_start_at_the_batch_rows():
    """`segments_at`: the loop's segments for Diffuser begin at the rows of its batch and
    stop (masked, padded with the last real row) at the episode's end."""
    n = 20
    obs = np.arange(n, dtype=np.float32)[:, None]
    ends = np.zeros(n, bool)
    ends[[4, 19]] = True
    data = Dataset(obs, np.ones((n, 1)), np.arange(n, dtype=np.float32), obs + 1,
                   np.zeros(n, bool), ends)
    state = ReplayBuffer(data, 0, Normalizer.identity(1)).init_state()
    seg = ReplayBuffer.segments_at(state, jnp.array([0, 3, 10]), 3)
    np.testing.assert_array_equal(seg.observations[..., 0], [[0, 1, 2], [3, 4, 4], [10, 11, 12]])
    np.testing.assert_array_equal(seg.mask, [[1, 1, 1], [1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(seg.next_observations[1, :, 0], [4, 5, 5])
    np.testing.assert_array_equal(seg.rewards[1], [3, 4, 0])


def test_explore_executes_the_first_action_of_the_best_plan():
    agent = Diffuser(DiffuserConfig(horizon=2, hidden=(8,), planner_hidden=(16,),
                                    returns_hidden=(8,), steps=4, candidates=8))
    state = agent.init(jax.random.PRNGKey(0), 2, 2)
    obs = jnp.array([[0.1, -0.2], [0.3, 0.4]])
    key = jax.random.PRNGKey(3)
    action, info = agent.explore(state, obs, key)
    plans = agent.plans(state, jnp.repeat(obs, 8, axis=0), key)
    scores = agent.plan_value(state.returns.params, plans, jnp.zeros(16)).reshape(2, 8)
    best = np.asarray(plans).reshape(2, 8, -1)[np.arange(2), np.argmax(scores, -1)]
    np.testing.assert_allclose(action, best[:, 2:4], rtol=1e-5)
    assert float(info["plan_value"]) == pytest.approx(float(scores.max(-1).mean()), rel=1e-5)


def test_select_plan_ranks_any_sampler_plans_by_j():
    """The extraction explore uses, on plans it did not draw (3 per state, not `candidates`)."""
    agent = Diffuser(DiffuserConfig(horizon=2, hidden=(8,), planner_hidden=(16,),
                                    returns_hidden=(8,), steps=4, candidates=8))
    state = agent.init(jax.random.PRNGKey(0), 2, 2)
    plans = jax.random.normal(jax.random.PRNGKey(5), (2 * 3, 8))
    action, scores = agent.select_plan(state, plans, 2)
    j = agent.plan_value(state.returns.params, plans, jnp.zeros(6)).reshape(2, 3)
    np.testing.assert_allclose(scores, j, rtol=1e-6)
    best = np.asarray(plans).reshape(2, 3, -1)[np.arange(2), np.argmax(j, -1)]
    np.testing.assert_allclose(action, best[:, 2:4], rtol=1e-6)
    rolled = jnp.roll(plans.reshape(2, 3, -1), 1, axis=1).reshape(6, -1)
    np.testing.assert_allclose(agent.select_plan(state, rolled, 2)[0], action, rtol=1e-6)


def test_unet_backbone_plans():
    """`--diffuser.backbone unet`: Diffuser's temporal U-Net plans with guidance (its
    training step is the planner's backbone-agnostic loss; compiling its backward pass too
    costs a minute of CPU, left to the U-Net's own tests)."""
    agent = Diffuser(DiffuserConfig(horizon=8, backbone="unet", unet_dim=8, hidden=(8,),
                                    returns_hidden=(8,), steps=2, candidates=2, guide_stop=0))
    state = agent.init(jax.random.PRNGKey(0), 3, 2)
    action, info = jax.jit(agent.explore)(state, jnp.ones((2, 3)), jax.random.PRNGKey(1))
    assert action.shape == (2, 2) and np.all(np.isfinite(action))
    assert np.isfinite(float(info["plan_value"]))


def test_distill_needs_a_power_of_two_steps():
    with pytest.raises(ValueError, match="power of two"):
        DiffuserConfig(distill=True, steps=20)
    with pytest.raises(ValueError, match="backbone"):
        DiffuserConfig(backbone="transformer")


def test_distilled_planner_matches_its_teacher():
    """D-Diffuser: a K = 4 planner fitted on deterministic episodes (a = 0.5 s, s' = 0.8 s +
    a) distilled 4 → 2 → 1: the one-step student's first actions match the teacher's from the
    same noise (relative MSE), and planning switches to the student."""
    rng = np.random.default_rng(0)
    obs, act, nxt, ends = [], [], [], []
    for _ in range(200):
        s = rng.uniform(-1, 1)
        for h in range(10):
            a = 0.5 * s
            obs.append([s])
            act.append([a])
            s2 = 0.8 * s + a
            nxt.append([s2])
            ends.append(h == 9)
            s = s2
    data = Dataset(np.array(obs), np.array(act), np.zeros(len(obs)), np.array(nxt),
                   np.zeros(len(obs), bool), np.array(ends))
    buffer_state = ReplayBuffer(data, 0, Normalizer.identity(1)).init_state()
    agent = Diffuser(DiffuserConfig(horizon=4, hidden=(8,), planner_hidden=(128, 128),
                                    returns_hidden=(8,), steps=4, distill=True,
                                    distill_steps_per_round=400, candidates=4))
    state = agent.init(jax.random.PRNGKey(0), 1, 1)
    planner, _ = agent.planner.fit(state.planner, buffer_state, jax.random.PRNGKey(1), 1500)
    state = state.replace(planner=planner)
    probe = jnp.linspace(-0.9, 0.9, 256)[:, None]
    key = jax.random.PRNGKey(5)
    np.testing.assert_allclose(agent.plans(state, probe, key),
                               agent.guided_plans(state, probe, key))
    state = agent.on_phase_start(state, "online", None, buffer_state, jax.random.PRNGKey(2))
    reports = agent.distill_reports
    assert int(state.distillations) == 1 and [r["student_steps"] for r in reports] == [2, 1]
    assert reports[-1]["policy_rel_mse"] < 0.05, reports[-1]
    student = agent.plans(state, probe, key)
    np.testing.assert_allclose(student, agent.student_plans(state, probe, key))
    first_action = agent.planner.layout.action_slot(student)
    assert float(jnp.mean((first_action - 0.5 * probe) ** 2)) < 0.01


def _tiny(**agent) -> TrainConfig:
    loop = LoopConfig(offline_steps=50, online_steps=100, eval_every=50, eval_episodes=2,
                      checkpoint_every=50, scan_chunk=50, batch_size=16, progress=False)
    return TrainConfig(task="frozenlake-shift", algo="diffuser", seed=1, preset="quick",
                       loop=loop,
                       agent=DiffuserConfig(horizon=4, hidden=(8,), planner_hidden=(16,),
                                            returns_hidden=(8,), steps=4, candidates=4, **agent),
                       env=dict(map="4x4", data_episodes=50))


@pytest.mark.slow
def test_resumed_diffuser_run_matches_uninterrupted(resume_matches):
    """Diffuser crashed mid-online (planner, guide and bootstrap critic are the state; the
    distilled student's resume is the shared mixin's, tested with D-DACER)."""
    _, records = resume_matches(_tiny(), 75)
    assert all(np.isfinite(r["plan_value"]) for r in records if "plan_value" in r)
    losses = [r["planner_loss"] for r in records if "planner_loss" in r]
    assert losses and np.all(np.isfinite(losses))
