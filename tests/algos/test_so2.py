"""SO2: the perturbed ensemble target, the update and actor counts of its online protocol,
and resume of a run of the one loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.algos.so2 import SO2Config, so2_objective
from dualrl.config import LoopConfig, TrainConfig
from dualrl.critics.so2 import perturbed_actions
from dualrl.data.buffer import Batch
from dualrl.flags import build_train_config
from dualrl.o2o.checkpoint import latest_checkpoint, load_checkpoint
from dualrl.o2o.loop import O2ORun

OBS_DIM, ACT_DIM, B = 3, 2, 32


def _batch(seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return Batch(observations=jnp.asarray(rng.normal(size=(B, OBS_DIM)), f32),
                 actions=jnp.asarray(rng.uniform(-1, 1, size=(B, ACT_DIM)), f32),
                 rewards=jnp.asarray(rng.normal(size=B), f32),
                 next_observations=jnp.asarray(rng.normal(size=(B, OBS_DIM)), f32),
                 dones=jnp.asarray(rng.uniform(size=B) < 0.2, f32))


def test_perturbation_is_clipped_gaussian_noise_inside_the_action_box():
    a = jnp.full((20_000, ACT_DIM), 0.9)
    noisy = perturbed_actions(a, jax.random.PRNGKey(0), 0.3, 0.6)
    centred = perturbed_actions(jnp.zeros_like(a), jax.random.PRNGKey(0), 0.3, 0.6)
    assert float(jnp.abs(centred).max()) == pytest.approx(0.6)  # noise clipped at ±0.6
    clipped_std = float(np.std(np.clip(np.random.default_rng(0).normal(0, 0.3, 10**6),
                                       -0.6, 0.6)))
    assert float(centred.std()) == pytest.approx(clipped_std, rel=0.03)
    assert float(noisy.max()) == 1.0 and float(noisy.min()) >= 0.3 - 1e-6  # box kept


def test_target_is_the_ensemble_minimum_at_perturbed_next_actions():
    cfg = SO2Config(hidden=(16, 16), num_qs=10)
    objective = so2_objective(cfg, None)
    _, temps, target = objective.init(jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    batch, alpha, key = _batch(), 0.2, jax.random.PRNGKey(3)
    next_actions = jnp.full((B, ACT_DIM), 0.5)
    log_pi = jnp.full((B,), -1.5)
    policy = lambda obs, k, n: (next_actions, log_pi)  # noqa: E731
    y = objective.td_target(target, batch, policy, alpha, key)

    _, k_noise = jax.random.split(key)  # td_target's split: policy key, noise key
    perturbed = perturbed_actions(next_actions, k_noise, 0.3, 0.6)
    heads = objective.critic_net.apply(target, batch.next_observations, perturbed)  # (10, B)
    assert heads.shape == (10, B)
    expected = batch.rewards + 0.99 * (1 - batch.dones) * (heads.min(0) - alpha * log_pi)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    # not the unperturbed actions, nor the ensemble mean
    plain = objective.critic_net.apply(target, batch.next_observations, next_actions).min(0)
    assert float(jnp.abs(heads.min(0) - plain).max()) > 1e-4
    assert float(jnp.abs(heads.mean(0) - heads.min(0)).min()) > 0.0


def _tiny(**loop) -> TrainConfig:
    loop = LoopConfig(**{**dict(offline_steps=200, online_steps=100, eval_every=100,
                                eval_episodes=4, checkpoint_every=100, scan_chunk=100,
                                batch_size=64, progress=False, utd=10, online_ratio=0.1,
                                rest_from_all=True), **loop})
    return TrainConfig(task="frozenlake-shift", algo="so2", seed=2, preset="quick", loop=loop,
                       agent=SO2Config(hidden=(32, 32), actor_hidden=(32, 32), num_qs=10),
                       env=dict(map="4x4", data_episodes=200))


def test_so2_defines_its_online_protocol_under_the_users_flags():
    config, _ = build_train_config(["--algo", "so2", "--preset", "cpu"])
    assert (config.loop.utd, config.loop.online_ratio, config.loop.rest_from_all) == \
        (10, 0.1, True)
    assert config.agent.num_qs == 10
    config, _ = build_train_config(["--algo", "so2", "--utd", "3", "--so2.num-qs", "4"])
    assert config.loop.utd == 3 and config.agent.num_qs == 4
    config, _ = build_train_config(["--algo", "so2", "--laplace"])  # "SO2 w LA"
    assert config.agent.laplace


def test_update_and_actor_counts_are_exact_and_resume_matches(tmp_path, resume_matches):
    """Offline: one critic and one actor step per update; online: utd = 10 critic steps per
    environment step, the actor every 10th of them — one per step."""
    cfg = _tiny()
    resume_matches(cfg, 60)
    # the finished run's final state
    final, _, _ = load_checkpoint(latest_checkpoint(tmp_path / "ref/checkpoints"),
                                  O2ORun(cfg).agent_state)
    assert int(final.steps) == 200 + 100 * 10
    assert int(final.actor_steps) == 200 + 100
