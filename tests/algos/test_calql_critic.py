"""Cal-QL's critic pieces: Monte-Carlo returns-to-go and the calibrated CQL gap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.critics.calql import cql_difference, returns_to_go
from dualrl.data.dataset import Dataset


def test_returns_to_go_per_episode_against_a_direct_sum():
    rng = np.random.default_rng(0)
    lengths = [5, 1, 7]
    rewards = rng.normal(size=sum(lengths))
    gamma = 0.9
    got = returns_to_go(rewards, _slices(lengths), gamma)
    start = 0
    for length in lengths:
        for t in range(length):
            tail = rewards[start + t:start + length]
            expected = np.sum(tail * gamma ** np.arange(len(tail)))
            np.testing.assert_allclose(got[start + t], expected, rtol=1e-5)
        start += length


def test_sparse_failures_get_the_value_of_failing_forever():
    rewards = np.array([-1.0, -1.0, -1.0, -1.0, 0.0])  # episode 1 reaches the goal
    got = returns_to_go(rewards, _slices([3, 2]), 0.99, sparse_reward_min=-1.0)
    np.testing.assert_allclose(got[:3], -100.0, rtol=1e-5)
    np.testing.assert_allclose(got[3:], [-1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("episodes", [
    [slice(0, 2), slice(1, 4)],  # overlapping
    [slice(0, 2), slice(3, 4)],  # a gap
    [slice(0, 2), slice(2, 3)],  # short of the rows
    [],
])
def test_returns_to_go_rejects_episodes_that_do_not_tile_the_rows(episodes):
    with pytest.raises(ValueError, match="tile"):
        returns_to_go(np.zeros(4), episodes, 0.99)


def test_returns_to_go_rejects_the_sparse_rule_without_discount():
    with pytest.raises(ValueError, match="gamma < 1"):
        returns_to_go(np.zeros(2), _slices([2]), 1.0, sparse_reward_min=0.0)


def test_returns_to_go_on_a_datasets_own_episode_slices():
    n = 6
    data = Dataset(observations=np.zeros((n, 1)), actions=np.zeros((n, 1)),
                   rewards=np.ones(n), next_observations=np.zeros((n, 1)),
                   terminals=np.zeros(n, bool), timeouts=np.array([0, 0, 1, 0, 0, 1], bool))
    got = returns_to_go(data.rewards, data.episode_slices(), 0.5)
    np.testing.assert_allclose(got, [1.75, 1.5, 1.0, 1.75, 1.5, 1.0])


def _slices(lengths):
    ends = np.cumsum(lengths)
    return [slice(int(e - n), int(e)) for n, e in zip(lengths, ends, strict=True)]


def _random_inputs(key, heads=2, batch=8, samples=4):
    ks = jax.random.split(key, 6)
    return dict(
        q_data=jax.random.normal(ks[0], (heads, batch)),
        q_random=jax.random.normal(ks[1], (heads, batch, samples)),
        q_policy=jax.random.normal(ks[2], (heads, batch, samples)),
        log_pi_policy=jax.random.normal(ks[3], (batch, samples)),
        q_next_policy=jax.random.normal(ks[4], (heads, batch, samples)),
        log_pi_next_policy=jax.random.normal(ks[5], (batch, samples)),
    )


def test_cql_gap_is_the_importance_sampled_logsumexp_minus_the_data_q():
    x = _random_inputs(jax.random.PRNGKey(0))
    gap, raised = cql_difference(**x, act_dim=3)
    per_state = np.zeros((2, 8))
    for h in range(2):
        for b in range(8):
            terms = np.concatenate([
                np.asarray(x["q_random"][h, b]) - 3 * np.log(0.5),
                np.asarray(x["q_next_policy"][h, b] - x["log_pi_next_policy"][b]),
                np.asarray(x["q_policy"][h, b] - x["log_pi_policy"][b]),
            ])
            per_state[h, b] = np.log(np.sum(np.exp(terms))) - float(x["q_data"][h, b])
    np.testing.assert_allclose(gap, per_state.mean(axis=1), rtol=1e-5)
    assert float(raised) == 0.0


def test_calibration_raises_policy_q_to_the_mc_bound_and_only_those():
    x = _random_inputs(jax.random.PRNGKey(1))
    bound = jnp.full((8,), 0.5)
    gap, raised = cql_difference(**x, act_dim=3, mc_lower_bound=bound)
    expected_raised = np.mean(np.concatenate(
        [np.asarray(x["q_policy"]) < 0.5, np.asarray(x["q_next_policy"]) < 0.5], -1))
    np.testing.assert_allclose(raised, expected_raised, rtol=1e-6)
    manual = dict(x, q_policy=jnp.maximum(x["q_policy"], 0.5),
                  q_next_policy=jnp.maximum(x["q_next_policy"], 0.5))
    np.testing.assert_allclose(gap, cql_difference(**manual, act_dim=3)[0], rtol=1e-6)
    # a bound far below every Q changes nothing; the random actions are never bounded
    low = cql_difference(**x, act_dim=3, mc_lower_bound=jnp.full((8,), -1e6))[0]
    np.testing.assert_allclose(low, cql_difference(**x, act_dim=3)[0], rtol=1e-6)


def test_cql_gap_pushes_sampled_q_down_and_data_q_up():
    x = _random_inputs(jax.random.PRNGKey(2))
    grads = jax.grad(lambda q_data, q_policy: cql_difference(
        **dict(x, q_data=q_data, q_policy=q_policy), act_dim=3)[0].sum(),
        argnums=(0, 1))(x["q_data"], x["q_policy"])
    assert np.all(np.asarray(grads[0]) < 0) and np.all(np.asarray(grads[1]) > 0)


def test_cql_gap_clip():
    x = _random_inputs(jax.random.PRNGKey(3))
    gap, _ = cql_difference(**x, act_dim=3, clip_min=-0.1, clip_max=0.1)
    assert np.all(np.abs(np.asarray(gap)) <= 0.1 + 1e-6)
