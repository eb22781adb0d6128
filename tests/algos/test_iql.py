"""IQL: the loss functions by hand, then the jitted update on a fixed batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.actors.gaussian import gaussian_log_prob
from dualrl.algos.iql import IQL, IQLConfig
from dualrl.critics import iql as iql_loss
from dualrl.critics.networks import QEnsemble, ValueNet
from dualrl.data.buffer import Batch

OBS_DIM, ACT_DIM, B = 3, 2, 64


# --------------------------------------------------------------------- loss functions
def test_expectile_loss_is_asymmetric():
    diff = jnp.array([2.0, -2.0, 0.5, -0.5, 0.0])
    got = iql_loss.expectile_loss(diff, 0.7)
    # positive diff (Q > V) weighs tau, negative diff weighs 1 - tau.
    np.testing.assert_allclose(got, [0.7 * 4.0, 0.3 * 4.0, 0.7 * 0.25, 0.3 * 0.25, 0.0],
                               rtol=1e-6)
    assert got[0] > got[1]  # same |diff|, different weight
    np.testing.assert_allclose(iql_loss.expectile_loss(diff, 0.9), [3.6, 0.4, 0.225, 0.025, 0.0],
                               rtol=1e-6)


def test_expectile_half_is_half_the_squared_error():
    diff = jnp.array([1.5, -3.0, 0.2])
    np.testing.assert_allclose(iql_loss.expectile_loss(diff, 0.5), 0.5 * diff**2, rtol=1e-6)


def test_value_loss_by_hand():
    q = jnp.array([1.0, 2.0, 4.0])
    v = jnp.array([2.0, 2.0, 2.0])
    # diffs q - v = [-1, 0, 2] -> weights [0.2, -, 0.8] at tau 0.8
    expected = (0.2 * 1.0 + 0.0 + 0.8 * 4.0) / 3
    assert float(iql_loss.value_loss(q, v, 0.8)) == pytest.approx(expected, rel=1e-6)


def test_value_loss_with_expectile_half_is_minimised_at_the_mean():
    q = jnp.asarray(np.random.default_rng(0).normal(1.0, 2.0, 200), jnp.float32)
    mean = float(q.mean())

    def loss(c, tau):
        return iql_loss.value_loss(q, jnp.full_like(q, c), tau)

    assert abs(float(jax.grad(loss)(mean, 0.5))) < 1e-5
    for delta in (0.01, 0.1, 1.0):
        assert float(loss(mean, 0.5)) < float(loss(mean + delta, 0.5))
        assert float(loss(mean, 0.5)) < float(loss(mean - delta, 0.5))
    # an upper expectile sits above the mean: the gradient pushes V up from the mean
    grid = jnp.linspace(mean - 3, mean + 3, 601)
    best = float(grid[jnp.argmin(jax.vmap(lambda c: loss(c, 0.9))(grid))])
    assert best > mean + 0.5


def test_q_loss_by_hand():
    qs = jnp.array([[1.0, 0.0], [0.5, 2.0]])  # (2 heads, 2 samples)
    rewards, dones, next_v = jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), jnp.array([2.0, 5.0])
    target = np.array([1.0 + 0.5 * 2.0, 0.0])  # done: no bootstrap
    expected = sum(((np.asarray(qs[i]) - target) ** 2).mean() for i in range(2))
    got = iql_loss.q_loss(qs, rewards, dones, next_v, gamma=0.5)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_q_loss_clips_its_target_to_the_value_range():
    qs = jnp.array([[0.5, 0.5, 0.5]])
    rewards, dones, next_v = jnp.array([3.0, -2.0, 0.2]), jnp.zeros(3), jnp.zeros(3)
    got = iql_loss.q_loss(qs, rewards, dones, next_v, gamma=0.5, value_range=(0.0, 1.0))
    expected = np.mean((0.5 - np.array([1.0, 0.0, 0.2])) ** 2)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    assert iql_loss.value_range(None, None) is None
    assert iql_loss.value_range(None, 1.0) == (-np.inf, 1.0)
    with pytest.raises(ValueError, match="value_min must be < value_max"):
        IQLConfig(value_min=1.0, value_max=0.0)


def test_value_range_bounds_what_the_critic_learns():
    """Rewards of 5 (above the range) everywhere: unclipped, Q and V climb past 1; with
    value_max 1, their regression targets never exceed 1, so neither do they (up to the
    step size)."""
    batch = _batch()._replace(rewards=jnp.full((B,), 5.0, jnp.float32))

    def final_values(**kw):
        agent, state = _agent(critic_lr=3e-3, value_lr=3e-3, **kw)
        run = jax.jit(lambda st: jax.lax.scan(
            lambda s, t: agent.update(s, batch, jax.random.fold_in(jax.random.PRNGKey(0), t)),
            st, jnp.arange(400)))
        final, _ = run(state)
        q = agent.critic_net.apply(final.critic.params, batch.observations, batch.actions)
        v = agent.value_net.apply(final.value.params, batch.observations)
        return float(q.max()), float(v.max())

    q_free, v_free = final_values()
    q_clip, v_clip = final_values(value_min=0.0, value_max=1.0)
    assert q_free > 2.0 and v_free > 2.0
    assert q_clip < 1.1 and v_clip < 1.1


def test_advantage_weights_clip_at_max_weight():
    q = jnp.array([0.0, 0.1, 1.0, 10.0, -5.0])
    v = jnp.zeros(5)
    w = iql_loss.advantage_weights(q, v, beta=3.0, max_weight=100.0)
    np.testing.assert_allclose(w[:3], np.exp(3.0 * np.array([0.0, 0.1, 1.0])), rtol=1e-6)
    assert float(w[3]) == 100.0  # exp(30) clipped
    assert 0.0 < float(w[4]) < 1e-6  # negative advantages shrink, never below 0
    w_small = iql_loss.advantage_weights(q, v, beta=3.0, max_weight=5.0)
    assert float(w_small.max()) == 5.0
    assert float(w_small[1]) == pytest.approx(np.exp(0.3), rel=1e-6)


# ------------------------------------------------------------------------ networks
def test_twin_q_ensemble_shape_and_independent_heads():
    net = QEnsemble(num_qs=2, hidden=(16, 16))
    obs, act = jnp.ones((B, OBS_DIM)), jnp.ones((B, ACT_DIM))
    params = net.init(jax.random.PRNGKey(0), obs, act)
    qs = net.apply(params, obs, act)
    assert qs.shape == (2, B)
    assert not np.allclose(qs[0], qs[1])  # each head has its own initialisation
    assert ValueNet(hidden=(16, 16)).apply(
        ValueNet(hidden=(16, 16)).init(jax.random.PRNGKey(1), obs), obs
    ).shape == (B,)


# -------------------------------------------------------------------------- updates
def _batch(seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return Batch(
        observations=jnp.asarray(rng.normal(size=(B, OBS_DIM)), f32),
        actions=jnp.asarray(rng.uniform(-0.9, 0.9, size=(B, ACT_DIM)), f32),
        rewards=jnp.asarray(rng.normal(size=B), f32),
        next_observations=jnp.asarray(rng.normal(size=(B, OBS_DIM)), f32),
        dones=jnp.asarray(rng.random(B) < 0.2, f32),
    )


def _agent(**kw) -> tuple[IQL, object]:
    agent = IQL(IQLConfig(hidden=(32, 32), **kw))
    return agent, agent.init(jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)


def _advantage_weights(agent: IQL, state, batch: Batch) -> jax.Array:
    target_q = agent.critic_net.apply(state.target_critic_params, batch.observations,
                                      batch.actions).min(0)
    v = agent.value_net.apply(state.value.params, batch.observations)
    return iql_loss.advantage_weights(target_q, v, agent.config.beta, agent.config.max_weight)


def test_updates_on_a_fixed_batch_reduce_the_losses():
    agent, state = _agent(actor_lr=1e-3, critic_lr=1e-3, value_lr=1e-3)
    batch = _batch()

    def weighted_nll(actor_params, weights):
        mean, log_std = state.actor.apply_fn(actor_params, batch.observations)
        return float(-(weights * gaussian_log_prob(batch.actions, mean, log_std)).mean())

    @jax.jit
    def run(state, key):
        def body(st, t):
            return agent.update(st, batch, jax.random.fold_in(key, t))

        return jax.lax.scan(body, state, jnp.arange(300))

    final, metrics = run(state, jax.random.PRNGKey(1))
    metrics = jax.device_get(metrics)
    for name, values in metrics.items():
        assert values.shape == (300,) and np.all(np.isfinite(values)), name
    first_critic, last_critic = metrics["critic_loss"][0], metrics["critic_loss"][-10:].mean()
    assert last_critic < 0.5 * first_critic
    assert metrics["value_loss"][-10:].mean() < 0.5 * metrics["value_loss"][:10].mean()
    # The logged actor_loss also moves with the advantage weights (which grow as Q and V
    # learn), so compare the actor's weighted NLL with the weights held fixed: those of the
    # first step and those of the last one. Both must fall.
    for weights in (_advantage_weights(agent, state, batch),
                    _advantage_weights(agent, final, batch)):
        before = weighted_nll(state.actor.params, weights)
        after = weighted_nll(final.actor.params, weights)
        assert after < 0.8 * before, (before, after)  # relative: the scale depends on init
    assert int(final.steps) == 300


def test_target_network_moves_by_polyak_averaging():
    tau = 0.1
    agent, state = _agent(tau=tau)
    new, _ = jax.jit(agent.update)(state, _batch(), jax.random.PRNGKey(2))
    expected = jax.tree.map(lambda old, cur: (1 - tau) * old + tau * cur,
                            state.target_critic_params, new.critic.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 new.target_critic_params, expected)
    # the target moved, but only part of the way to the online critic
    old_leaves = jax.tree.leaves(state.target_critic_params)
    new_leaves = jax.tree.leaves(new.target_critic_params)
    cur_leaves = jax.tree.leaves(new.critic.params)
    assert any(not np.allclose(a, b) for a, b in zip(old_leaves, new_leaves, strict=True))
    assert any(not np.allclose(a, b) for a, b in zip(new_leaves, cur_leaves, strict=True))
    assert int(new.steps) == 1


def test_update_is_deterministic_given_the_key():
    agent, state = _agent()
    update = jax.jit(agent.update)
    a, ma = update(state, _batch(), jax.random.PRNGKey(3))
    b, mb = update(state, _batch(), jax.random.PRNGKey(3))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert jax.device_get(ma) == jax.device_get(mb)


def test_act_deterministic_and_exploring():
    agent, state = _agent()
    obs = _batch().observations[:5]
    act = jax.jit(agent.act, static_argnames="explore")
    a1 = act(state, obs, jax.random.PRNGKey(0), explore=False)
    a2 = act(state, obs, jax.random.PRNGKey(1), explore=False)
    assert a1.shape == (5, ACT_DIM)
    np.testing.assert_array_equal(a1, a2)  # the key is ignored without exploration
    e1 = act(state, obs, jax.random.PRNGKey(0), explore=True)
    e2 = act(state, obs, jax.random.PRNGKey(1), explore=True)
    e1_again = act(state, obs, jax.random.PRNGKey(0), explore=True)
    assert e1.shape == (5, ACT_DIM)
    assert not np.allclose(e1, e2)
    np.testing.assert_array_equal(e1, e1_again)
    assert not np.allclose(e1, a1)  # exploration noise around the deterministic mean
