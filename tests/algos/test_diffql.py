"""Diff-QL: its sampler, the Q term, the EMA target actor, the Laplace Hessian of "Diff-QL w
LA", and a run of the one loop (resume, with the Laplace refits)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dualrl.algos.diffql import DiffQL, DiffQLConfig
from dualrl.config import LoopConfig, TrainConfig
from dualrl.data.buffer import Batch
from dualrl.uq.laplace import gauss_newton_precision

OBS_DIM, B = 2, 256


def _batch(actions: np.ndarray, rewards: np.ndarray | None = None, seed: int = 0) -> Batch:
    """One-step episodes (done = 1) over random states with the given actions."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    n = actions.shape[0]
    return Batch(observations=jnp.asarray(rng.normal(size=(n, OBS_DIM)), f32),
                 actions=jnp.asarray(actions, f32),
                 rewards=jnp.asarray(np.zeros(n) if rewards is None else rewards, f32),
                 next_observations=jnp.asarray(rng.normal(size=(n, OBS_DIM)), f32),
                 dones=jnp.ones(n, f32))


def _train(agent: DiffQL, batch: Batch, steps: int, seed: int = 0):
    state = agent.init(jax.random.PRNGKey(seed), OBS_DIM, batch.actions.shape[1])

    @jax.jit
    def run(state):
        def body(st, t):
            return agent.update(st, batch, jax.random.fold_in(jax.random.PRNGKey(1), t))

        return jax.lax.scan(body, state, jnp.arange(steps))

    return run(state)


def test_sampler_reproduces_a_bimodal_action_distribution():
    """The denoising loss alone, actions at ±0.7 in equal shares for one state: ancestral
    samples land on both modes and almost never in between. At 20 steps; at the default 5
    the same fit leaves ~10 % of the samples between the modes (|a| < 0.2), the coarse
    discretisation the reference accepts for speed."""
    rng = np.random.default_rng(0)
    acts = jnp.asarray((np.where(rng.random(B) < 0.5, -0.7, 0.7)
                        + 0.05 * rng.normal(size=B))[:, None], jnp.float32)
    obs = jnp.zeros((B, OBS_DIM))
    agent = DiffQL(DiffQLConfig(hidden=(8,), actor_hidden=(32, 32, 32), steps=20))
    params = agent.init(jax.random.PRNGKey(0), OBS_DIM, 1).actor.params
    tx = optax.adam(2e-3)

    @jax.jit
    def fit(params):
        def body(carry, t):
            p, opt = carry
            loss, grads = jax.value_and_grad(agent.bc_loss)(p, obs, acts, jax.random.PRNGKey(t))
            updates, opt = tx.update(grads, opt, p)
            return (optax.apply_updates(p, updates), opt), loss

        (p, _), losses = jax.lax.scan(body, (params, tx.init(params)), jnp.arange(1500))
        return p, losses

    params, losses = fit(params)
    assert float(losses[-100:].mean()) < 0.6 * float(losses[:100].mean())
    a = np.asarray(agent.sample_actions(params, jnp.zeros((2000, OBS_DIM)),
                                        jax.random.PRNGKey(3)))[:, 0]
    assert np.abs(a).max() <= 1.0  # x̂ clipped to the action box
    assert 0.4 < np.mean(a > 0.0) < 0.6
    assert np.mean(np.abs(np.abs(a) - 0.7) < 0.25) > 0.9
    assert np.mean(np.abs(a) < 0.2) < 0.03


def test_q_term_moves_actions_toward_higher_q():
    """Uniform data actions with reward = a (so Q(s, a) ≈ a, one-step episodes): with η > 0
    the policy's samples move up the critic, with η = 0 they stay spread over the data."""
    rng = np.random.default_rng(1)
    acts = rng.uniform(-1, 1, (B, 1))
    batch = _batch(acts, rewards=acts[:, 0])
    obs = batch.observations
    means = {}
    for eta in (0.0, 2.0):
        agent = DiffQL(DiffQLConfig(hidden=(32, 32), actor_hidden=(32, 32, 32), eta=eta,
                                    actor_lr=2e-3, critic_lr=2e-3, ema_start=0))
        state, _ = _train(agent, batch, 300)
        q = agent.q_value(state, obs, batch.actions)
        assert float(jnp.corrcoef(q, batch.actions[:, 0])[0, 1]) > 0.9  # the critic learnt a
        draws = agent.sample_actions(state.actor.params, obs, jax.random.PRNGKey(5))
        means[eta] = float(draws.mean())
    assert abs(means[0.0]) < 0.3, means
    assert means[2.0] > means[0.0] + 0.3, means


def test_ema_target_actor_holds_then_lags_every_few_updates():
    """ema_start 3, every 2 updates, decay 0.5: the EMA stays at the initial weights for
    updates 1–3, moves at update 4 to ½ (old + new), holds at 5, moves again at 6."""
    acts = np.random.default_rng(2).uniform(-1, 1, (32, 1))
    agent = DiffQL(DiffQLConfig(hidden=(8,), actor_hidden=(8,), ema_start=3, ema_every=2,
                                ema_decay=0.5, steps=2))
    batch = _batch(acts)
    state = agent.init(jax.random.PRNGKey(0), OBS_DIM, 1)
    update = jax.jit(agent.update)
    leaf = lambda p: np.asarray(p["params"]["output"]["kernel"])  # noqa: E731
    init = leaf(state.actor.params)
    for step in range(1, 7):
        before = leaf(state.ema_params)
        state, _ = update(state, batch, jax.random.PRNGKey(step))
        ema, actor = leaf(state.ema_params), leaf(state.actor.params)
        if step <= 3:
            np.testing.assert_array_equal(ema, init)
        elif step % 2 == 0:
            np.testing.assert_allclose(ema, 0.5 * before + 0.5 * actor, rtol=1e-6)
        else:
            np.testing.assert_array_equal(ema, before)
        assert not np.allclose(actor, init)


def test_laplace_precision_is_the_hessian_of_the_weighted_denoising_likelihood():
    """Diff-QL w LA: ε̂ of the action is exactly φ̃ W on the head's action columns, and the
    data term the shared module builds from `laplace_inputs` equals jax.hessian in [W; b]
    of ½ Σ w̄ ‖ε − φ̃ W‖² (block-diagonal over the action dimensions)."""
    act_dim = 2
    agent = DiffQL(DiffQLConfig(hidden=(8, 8), actor_hidden=(6, 6), laplace=True, steps=2,
                                weight_samples=4))
    state = agent.init(jax.random.PRNGKey(0), OBS_DIM, act_dim)
    rng = np.random.default_rng(3)
    obs = jnp.asarray(rng.normal(size=(24, OBS_DIM)), jnp.float32)
    act = jnp.asarray(rng.uniform(-1, 1, (24, act_dim)), jnp.float32)
    # a critic that is not flat, so that the weights vary
    state = state.replace(critic=state.critic.replace(params=jax.tree.map(
        lambda p: p * 5.0, state.critic.params)))
    phi, weights, inv_var = agent.laplace_inputs(state, obs, act)
    assert float(weights.std()) > 0.0
    head = agent.head_weights(state.actor.params)  # (F+1, da)
    phi_t = jnp.concatenate([phi, jnp.ones((phi.shape[0], 1))], -1)
    # the linear reading is exact: the network's action columns are φ̃ W at those features
    phi2, eps = agent.denoising_features(state.actor.params, obs, act, jax.random.PRNGKey(1))
    np.testing.assert_allclose(phi2, phi, rtol=1e-6)
    full = agent.planner.net.apply(state.actor.params, phi, method=type(agent.planner.net).head)
    np.testing.assert_allclose(full[:, OBS_DIM:], phi_t @ head, rtol=1e-5, atol=1e-6)

    w_bar = weights / weights.mean()

    def loss(w):
        return 0.5 * jnp.sum(w_bar[:, None] * (eps - phi_t @ w) ** 2 * inv_var)

    hess = jax.hessian(loss)(head)
    precision = gauss_newton_precision(phi, weights, inv_var)
    for j in range(act_dim):
        np.testing.assert_allclose(hess[:, j, :, j], precision[j], rtol=1e-4, atol=1e-4)
    assert float(jnp.abs(hess[:, 0, :, 1]).max()) == 0.0


def test_laplace_heads_change_the_candidates():
    """Acting with Laplace draws candidates from the posterior heads: non-zero deltas move
    them (same keys), zero deltas reproduce plain Diff-QL acting exactly."""
    agent = DiffQL(DiffQLConfig(hidden=(8,), actor_hidden=(8, 8), laplace=True, steps=2,
                                candidates=6, num_samples=3))
    state = agent.init(jax.random.PRNGKey(0), OBS_DIM, 2)
    obs = jnp.ones((4, OBS_DIM))
    key = jax.random.PRNGKey(7)
    rows = jnp.repeat(obs, 6, axis=0)
    plain = agent.sample_actions(state.actor.params, rows, key)
    zero = agent.sample_actions(state.actor.params, rows, key, jnp.zeros((24, 9, 2)))
    np.testing.assert_allclose(zero, plain, rtol=1e-6, atol=1e-7)
    moved = agent.sample_actions(state.actor.params, rows, key, jnp.full((24, 9, 2), 0.3))
    assert float(jnp.abs(moved - plain).max()) > 1e-3
    action, info = agent.explore(state, obs, key)
    assert action.shape == (4, 2) and np.isfinite(float(info["candidate_std"]))


def _tiny(**agent) -> TrainConfig:
    loop = LoopConfig(offline_steps=50, online_steps=100, eval_every=50, eval_episodes=2,
                      checkpoint_every=50, scan_chunk=50, batch_size=16, progress=False)
    return TrainConfig(task="frozenlake-shift", algo="diffql", seed=1, preset="quick", loop=loop,
                       agent=DiffQLConfig(hidden=(8,), actor_hidden=(8, 8), steps=2,
                                          candidates=4, num_samples=2, **agent),
                       env=dict(map="4x4", data_episodes=50))


def test_resumed_diffql_run_matches_uninterrupted(resume_matches):
    """Diff-QL w LA (the Laplace refits are part of the state) crashed mid-online."""
    cfg = _tiny(laplace=True, refit_every=25, fit_samples=64, weight_samples=2)
    _, records = resume_matches(cfg, 75)
    assert records[-1]["refits"] >= 4 and records[-1]["refit_lambda"] > 0.0
    losses = [r["critic_loss"] for r in records if "critic_loss" in r]
    assert losses and np.all(np.isfinite(losses))



def test_distilled_one_step_student_matches_its_teacher():
    """D-Diff-QL: the T = 4 policy (denoising loss alone, a = 0.6 tanh(2 s) + noise)
    progressively distilled 4 → 2 → 1 on rows of B: the one-step student's samples match the
    teacher's from the same noise (relative MSE, as DUAL's distillation test), and acting
    uses the teacher until a student exists, the student after."""
    from dualrl.data.buffer import ReplayBuffer
    from dualrl.data.dataset import Dataset
    from dualrl.data.normalizer import Normalizer

    rng = np.random.default_rng(4)
    n = 4000
    obs = rng.uniform(-1, 1, (n, 1))
    act = 0.6 * np.tanh(2 * obs) + 0.05 * rng.normal(size=(n, 1))
    ends = np.zeros(n, bool)
    ends[9::10] = True
    data = Dataset(obs, act, np.zeros(n), np.roll(obs, -1, 0), np.zeros(n, bool), ends)
    buffer_state = ReplayBuffer(data, 0, Normalizer.identity(1)).init_state()
    agent = DiffQL(DiffQLConfig(hidden=(8,), actor_hidden=(64, 64, 64), steps=4, eta=0.0,
                                distill=True, distill_steps_per_round=400, candidates=4))
    state = agent.init(jax.random.PRNGKey(0), 1, 1)
    tx = optax.adam(2e-3)
    s_all, a_all = jnp.asarray(obs, jnp.float32), jnp.asarray(act, jnp.float32)

    @jax.jit
    def fit(params):
        def body(carry, t):
            p, opt = carry
            idx = jax.random.randint(jax.random.PRNGKey(t), (256,), 0, n)
            loss, grads = jax.value_and_grad(agent.bc_loss)(
                p, s_all[idx], a_all[idx], jax.random.fold_in(jax.random.PRNGKey(t), 1))
            updates, opt = tx.update(grads, opt, p)
            return (optax.apply_updates(p, updates), opt), loss

        return jax.lax.scan(body, (params, tx.init(params)), jnp.arange(1500))[0][0]

    state = state.replace(actor=state.actor.replace(params=fit(state.actor.params)))
    probe = jnp.linspace(-0.9, 0.9, 512)[:, None]
    key = jax.random.PRNGKey(11)
    before = agent.distilled_or_teacher(state, probe, key)
    np.testing.assert_allclose(before, agent.sample_actions(state.actor.params, probe, key))
    state = agent.on_phase_start(state, "online", None, buffer_state, jax.random.PRNGKey(2))
    reports = agent.distill_reports
    assert int(state.distillations) == 1
    assert [r["student_steps"] for r in reports] == [2, 1]
    assert reports[-1]["policy_rel_mse"] < 0.05, reports[-1]
    after = agent.distilled_or_teacher(state, probe, key)
    np.testing.assert_allclose(after, agent.student_actions(state.student_params, probe, key))
    # the student follows the data's state dependence
    target = 0.6 * np.tanh(2 * np.asarray(probe))
    assert float(np.mean(np.abs(np.asarray(after) - target))) < 0.1
