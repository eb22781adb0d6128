"""DUAL on the SAC-family critics (`--dual.critic calql|so2`): the Laplace Hessian of the
actor loss it is fitted on, and runs of the one loop on each critic."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.actors.gaussian import gaussian_log_prob
from dualrl.algos.dual import DUAL, DUALConfig, dual_critic_config
from dualrl.config import LoopConfig, TrainConfig
from dualrl.flags import build_train_config
from dualrl.o2o.loop import train
from dualrl.uq.laplace import gauss_newton_precision

OBS_DIM, ACT_DIM = 3, 2
TINY = dict(horizon=4, planner_hidden=(16, 16), planner_steps=200, distill_steps_per_round=30,
            hidden=(32, 32), refit_every=50, fit_samples=1_000, teacher_steps=4)


@pytest.mark.parametrize("critic", ["calql", "so2"])
def test_laplace_precision_is_the_hessian_of_the_weighted_actor_likelihood(critic):
    """The data term the shared module builds from DUAL's `laplace_inputs` on a SAC-family
    critic equals jax.hessian, in the effective head W_eff, of −Σ w̄ log N(a; φ̃ W_eff, σ_ψ²)
    with w = exp(A/α) from that critic (exact: μ is linear in W_eff)."""
    agent = DUAL(DUALConfig(critic=critic, num_qs=3, **TINY))
    state = agent.init(jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(16, OBS_DIM)), jnp.float32)
    act = jnp.asarray(rng.uniform(-0.9, 0.9, size=(16, ACT_DIM)), jnp.float32)
    phi, weights, inv_var = agent.laplace_inputs(state, obs, act)
    precision = gauss_newton_precision(phi, weights, inv_var)  # (da, F+1, F+1)
    mean, log_std, _ = agent.policy_parts(state.actor.params, obs)
    phi_t = jnp.concatenate([phi, jnp.ones((phi.shape[0], 1))], -1)
    w_eff = agent.head_weights(state.actor.params)
    np.testing.assert_allclose(phi_t @ w_eff, mean, rtol=1e-4, atol=1e-5)  # μ = φ̃ W_eff
    w_bar = weights / weights.mean()

    def nll(head):
        return -jnp.sum(w_bar * gaussian_log_prob(act, phi_t @ head, log_std))

    hess = jax.hessian(nll)(w_eff)  # (F+1, da, F+1, da)
    for j in range(ACT_DIM):
        np.testing.assert_allclose(hess[:, j, :, j], precision[j], rtol=1e-4, atol=1e-4)
    assert float(jnp.abs(hess[:, 0, :, 1]).max()) == 0.0
    assert float(weights.std()) > 0.0  # the weights come from the critic


def test_dual_on_a_critic_takes_that_critics_settings_and_protocol():
    config, _ = build_train_config(["--algo", "dual", "--dual.critic", "calql"])
    assert config.agent.cql_alpha == 5.0 and config.agent.max_target_backup  # Frozen-Lake's
    assert config.loop.online_ratio == 0.5  # Cal-QL's mixing
    calql = dual_critic_config(config.agent)
    assert calql.cql_alpha == 5.0 and calql.value_max == 1.0
    config, _ = build_train_config(["--algo", "dual", "--dual.critic", "so2", "--utd", "4"])
    assert (config.loop.utd, config.loop.online_ratio, config.loop.rest_from_all) == \
        (4, 0.1, True)
    assert dual_critic_config(config.agent).num_qs == 10


@pytest.mark.parametrize("critic", ["calql", "so2"])
def test_dual_runs_end_to_end_on_each_critic(tmp_path, critic):
    utd = 10 if critic == "so2" else 1
    loop = LoopConfig(offline_steps=100, online_steps=60, eval_every=60, eval_episodes=4,
                      checkpoint_every=100, scan_chunk=100, batch_size=64, progress=False,
                      utd=utd, online_ratio=0.5)
    cfg = TrainConfig(task="frozenlake-shift", algo="dual", seed=0, preset="quick", loop=loop,
                      agent=DUALConfig(critic=critic, num_qs=4, sparse_reward=True, **TINY),
                      env=dict(map="4x4", data_episodes=200))
    summary = train(cfg, tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    online = [r for r in records if r["phase"] == "online"]
    assert summary["final_score"] is not None and online[-1]["refits"] >= 2
    assert np.isfinite(online[-1]["critic_loss"]) and online[-1]["epistemic_std"] > 0.0
    # SO2's actor moves at every 10th critic step online: one actor step per env step
    assert online[-1]["actor_updates"] == pytest.approx(1.0 / utd if critic == "so2" else 1.0)


def test_clip_draws_keeps_the_critics_queries_inside_the_action_box():
    key, mean, log_std = jax.random.PRNGKey(0), jnp.full((64, 2), 0.9), jnp.zeros((64, 2))
    plain = DUAL(DUALConfig(critic="calql", squash=False))._draw(key, mean, log_std, 5)
    clipped = DUAL(DUALConfig(critic="calql", squash=False, clip_draws=True))._draw(
        key, mean, log_std, 5)
    assert float(plain[0].max()) > 1.0 and float(jnp.abs(clipped[0]).max()) <= 1.0
    inside = jnp.abs(plain[0]) <= 1.0
    np.testing.assert_array_equal(jnp.where(inside, plain[0], 0), jnp.where(inside, clipped[0], 0))
    np.testing.assert_array_equal(plain[1], clipped[1])  # the Gaussian's own density


def test_squash_draws_inside_the_box_with_the_change_of_variables_density():
    key, mean, log_std = jax.random.PRNGKey(0), jnp.full((64, 2), 0.9), jnp.zeros((64, 2))
    agent = DUAL(DUALConfig(critic="so2", squash=True))
    action, log_pi = agent._draw(key, mean, log_std, 5)
    assert float(jnp.abs(action).max()) < 1.0
    u = jnp.arctanh(action)
    expected = gaussian_log_prob(u, mean[:, None], log_std[:, None]) \
        - jnp.log(1.0 - action ** 2).sum(-1)
    np.testing.assert_allclose(log_pi, expected, rtol=1e-3, atol=1e-3)
    # evaluation acts with tanh(μ)
    assert float(agent._squashed(jnp.asarray(3.0))) == pytest.approx(np.tanh(3.0))
    with pytest.raises(ValueError, match="--dual.squash"):
        DUALConfig(critic="iql", squash=True)
    # on by default for the SAC-family critics, off for IQL's
    assert DUALConfig(critic="calql").squash and not DUALConfig(critic="iql").squash
    with pytest.raises(ValueError, match="--dual.squash false"):
        DUALConfig(critic="so2", clip_draws=True)
    from dualrl.flags import build_train_config

    config, _ = build_train_config(["--algo", "dual", "--dual.critic", "so2",
                                    "--dual.squash", "false"])
    assert config.agent.squash is False
