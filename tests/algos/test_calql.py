"""Cal-QL: the CQL term, calibration, the α_cql switch, the Laplace Hessian of its actor loss,
and runs of the one loop (resume, a task's quick preset)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.actors.tanh_gaussian import tanh_gaussian_log_prob
from dualrl.algos.calql import CalQL, CalQLConfig, calql_objective
from dualrl.config import LoopConfig, TrainConfig
from dualrl.critics.sac import SACTemperatures
from dualrl.data.buffer import Batch
from dualrl.o2o.loop import O2ORun
from dualrl.uq.laplace import gauss_newton_precision

OBS_DIM, ACT_DIM, B = 3, 2, 64


def _toy_batch(seed: int = 0) -> Batch:
    """One-step episodes (done = 1) with data actions near +0.8 and reward 1: V^μ(s) = 1."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return Batch(
        observations=jnp.asarray(rng.normal(size=(B, OBS_DIM)), f32),
        actions=jnp.asarray(0.8 + 0.05 * rng.normal(size=(B, ACT_DIM)), f32),
        rewards=jnp.ones(B, f32),
        next_observations=jnp.asarray(rng.normal(size=(B, OBS_DIM)), f32),
        dones=jnp.ones(B, f32),
        mc_returns=jnp.ones(B, f32),
    )


def _fixed_policy(action: float):
    """A policy that always proposes `action` (log π = 0): far from the data's actions."""
    def draw(obs, key, n):
        shape = (obs.shape[0], ACT_DIM) if n is None else (obs.shape[0], n, ACT_DIM)
        return jnp.full(shape, action), jnp.zeros(shape[:-1])

    return draw


def _train_critic(steps: int = 300, **cfg):
    objective = calql_objective(CalQLConfig(hidden=(32, 32), critic_lr=3e-3, **cfg), None)
    critic, temps, target = objective.init(jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    batch, policy = _toy_batch(), _fixed_policy(-0.8)

    @jax.jit
    def step(carry, t):
        critic, temps, target = carry
        critic, temps, target, _, metrics = objective.update(
            critic, temps, target, batch, policy, jax.random.fold_in(jax.random.PRNGKey(1), t))
        return (critic, temps, target), metrics

    (critic, temps, target), metrics = jax.lax.scan(step, (critic, temps, target),
                                                    jnp.arange(steps))
    q = objective.min_q(critic.params)
    return q(batch.observations, batch.actions), q(
        batch.observations, jnp.full_like(batch.actions, -0.8)), metrics


def test_cql_term_lowers_out_of_data_actions_relative_to_data_actions():
    q_data, q_ood, _ = _train_critic(cql_alpha=0.0, calibrated=False)
    gap_plain = float(jnp.mean(q_data - q_ood))
    assert float(jnp.mean(q_data)) == pytest.approx(1.0, abs=0.1)  # TD alone fits r = 1
    q_data, q_ood, _ = _train_critic(cql_alpha=5.0, calibrated=False)
    gap_cql = float(jnp.mean(q_data - q_ood))
    assert gap_cql > gap_plain + 0.5, (gap_plain, gap_cql)


def test_calibration_keeps_data_action_values_above_the_monte_carlo_bound():
    """With a policy far from the data, plain CQL lets Q(s, a_data) fall below V^μ(s) = 1
    (measured: 0.57) and drives Q(s, π(s)) to ~ −1900; Cal-QL's bound stops the policy term's
    push at V^μ, so Q of the data actions stays above it (measured: 2.9)."""
    q_data_cql, q_ood_cql, _ = _train_critic(cql_alpha=5.0, calibrated=False)
    q_data_cal, q_ood_cal, metrics = _train_critic(cql_alpha=5.0, calibrated=True)
    assert float(jnp.mean(q_data_cql)) < 1.0 <= float(jnp.min(q_data_cal))
    assert float(jnp.mean(q_ood_cal)) > float(jnp.mean(q_ood_cql)) + 100.0
    assert float(metrics["calibration_rate"][-1]) > 0.5  # the bound is what holds them


def test_cql_weight_switches_to_its_online_value_at_the_switch():
    agent = CalQL(CalQLConfig(hidden=(16, 16), actor_hidden=(16, 16), cql_alpha=5.0,
                              cql_alpha_online=0.5))
    state = agent.init(jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    batch, update = _toy_batch(), jax.jit(agent.update)
    _, offline = update(state, batch, jax.random.PRNGKey(1))
    state = agent.on_phase_start(state, "online", None, None, jax.random.PRNGKey(2))
    _, online = update(state, batch, jax.random.PRNGKey(1))
    assert float(offline["cql_weight"]) == 5.0 and float(online["cql_weight"]) == 0.5


def test_lagrange_multiplier_rises_while_the_gap_exceeds_its_target():
    objective = calql_objective(CalQLConfig(hidden=(16, 16), lagrange=True,
                                            target_action_gap=-100.0), None)
    critic, temps, target = objective.init(jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    before = float(temps.alpha_prime)
    _, temps, _, _, _ = objective.update(critic, temps, target, _toy_batch(),
                                         _fixed_policy(-0.8), jax.random.PRNGKey(1))
    assert float(temps.alpha_prime) > before


def test_temperature_moves_toward_the_entropy_target():
    temps = SACTemperatures.create(0.0, 1e-2)
    from dualrl.critics.sac import update_temperature

    peaked = jnp.full((8,), 10.0)  # log π far above −target: entropy too low, α must rise
    raised, _ = update_temperature(temps, peaked, -2.0)
    lowered, _ = update_temperature(temps, -peaked, -2.0)
    assert float(raised.alpha) > 1.0 > float(lowered.alpha)


def test_laplace_precision_is_the_hessian_of_the_weighted_actor_likelihood():
    """Cal-QL w LA: the data term the shared Laplace module builds from `laplace_inputs`
    equals jax.hessian, in the mean head [W; b], of −Σ w̄ log π(a|s) of the tanh-Gaussian
    (exact: the likelihood is Gaussian in the pre-squash mean, which is linear in W)."""
    agent = CalQL(CalQLConfig(hidden=(8, 8), actor_hidden=(6,), laplace=True))
    state = agent.init(jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    batch = _toy_batch()
    obs, act = batch.observations[:16], jnp.clip(batch.actions[:16], -0.95, 0.95)
    phi, weights, inv_var = agent.laplace_inputs(state, obs, act)
    precision = gauss_newton_precision(phi, weights, inv_var)  # (da, F+1, F+1)
    _, log_std, _ = agent._actor_parts(state.actor.params, obs)
    w_bar = weights / weights.mean()
    phi_t = jnp.concatenate([phi, jnp.ones((phi.shape[0], 1))], -1)

    def nll(head):
        return -jnp.sum(w_bar * tanh_gaussian_log_prob(jnp.arctanh(act), phi_t @ head, log_std))

    hess = jax.hessian(nll)(agent.head_weights(state.actor.params))  # (F+1, da, F+1, da)
    for j in range(ACT_DIM):
        np.testing.assert_allclose(hess[:, j, :, j], precision[j], rtol=1e-4, atol=1e-4)
    assert float(jnp.abs(hess[:, 0, :, 1]).max()) == 0.0
    assert float(weights.std()) > 0.0  # the weights do depend on the critic


# ----------------------------------------------------------------- the one loop
def _tiny(**agent) -> TrainConfig:
    loop = LoopConfig(offline_steps=300, online_steps=200, eval_every=100, eval_episodes=4,
                      checkpoint_every=100, scan_chunk=100, batch_size=64, progress=False,
                      online_ratio=0.5)
    return TrainConfig(task="frozenlake-shift", algo="calql", seed=1, preset="quick", loop=loop,
                       agent=CalQLConfig(hidden=(32, 32), actor_hidden=(32, 32),
                                         sparse_reward=True, **agent),
                       env=dict(map="4x4", data_episodes=200))


def test_resumed_calql_run_matches_uninterrupted(resume_matches):
    """Cal-QL w LA (the Laplace refits are part of the state) crashed mid-online."""
    cfg = _tiny(laplace=True, refit_every=50, fit_samples=256)
    assert float(O2ORun(cfg).buffer_state.mc_returns.max()) > 0.0  # the successes' returns
    _, records = resume_matches(cfg, 150)
    assert records[-1]["refits"] >= 4 and records[-1]["epistemic_std"] > 0.0
