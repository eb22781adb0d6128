"""EDIS: the exact synthetic share of a batch, the contrastive energies, energy-guided
generation toward the online states, and runs of the one loop (EDIS on IQL resumed, DUAL +
EDIS end to end)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.algos.edis import EDIS, EDISConfig
from dualrl.config import LoopConfig, TrainConfig
from dualrl.data.buffer import Batch, ReplayBuffer
from dualrl.data.dataset import Dataset
from dualrl.data.normalizer import Normalizer

SMALL = dict(hidden=(8,), generator_hidden=(64, 64), energy_hidden=(32, 32), sample_steps=8,
             negatives=4, energy_rows=64, synthetic_size=256)


def _agent(**kw) -> tuple[EDIS, object]:
    agent = EDIS(EDISConfig(**{**SMALL, **kw}))
    return agent, agent.init(jax.random.PRNGKey(0), 1, 1)


def _batch(n: int) -> Batch:
    z = jnp.zeros((n, 1))
    return Batch(observations=z - 5.0, actions=z - 5.0, rewards=jnp.zeros(n),
                 next_observations=z - 5.0, dones=jnp.zeros(n), mc_returns=jnp.zeros(n))


def test_synthetic_share_of_a_batch_is_exact():
    agent, state = _agent(synthetic_share=0.25)
    batch = _batch(64)
    key = jax.random.PRNGKey(1)
    np.testing.assert_array_equal(agent.mix(state, batch, key).observations,
                                  batch.observations)  # no pool yet: all real
    pool = jnp.tile(jnp.array([[1.0, 2.0, 3.0, 1.0, 4.0]]), (256, 1))  # s, a, r, d, s'
    mixed = agent.mix(state.replace(pool=pool, pools=jnp.ones((), jnp.int32)), batch, key)
    synthetic = np.asarray(mixed.observations[:, 0]) == 1.0
    assert synthetic.sum() == 16 and synthetic[:16].all()
    np.testing.assert_array_equal(mixed.actions[:16, 0], 2.0)
    np.testing.assert_array_equal(mixed.rewards[:16], 3.0)
    np.testing.assert_array_equal(mixed.dones[:16], 1.0)
    np.testing.assert_array_equal(mixed.next_observations[:16, 0], 4.0)
    np.testing.assert_array_equal(mixed.observations[16:, 0], -5.0)


def _buffer(n_offline: int = 4000, n_online: int = 200):
    """Offline s ~ N(0, 1), a = 0.5 s, s' = s + a; online rows at s ≈ 2 with a = −s."""
    rng = np.random.default_rng(0)

    def rows(s, a):
        return s[:, None], a[:, None], s[:, None] + a[:, None]

    s_off = rng.normal(size=n_offline)
    obs, act, nxt = rows(s_off, 0.5 * s_off)
    ends = np.zeros(n_offline, bool)
    ends[9::10] = True
    data = Dataset(obs, act, np.zeros(n_offline), nxt, np.zeros(n_offline, bool), ends)
    buffer = ReplayBuffer(data, n_online, Normalizer.identity(1))
    state = buffer.init_state()
    s_on = 2.0 + 0.1 * rng.normal(size=n_online)
    o, a, n = rows(s_on, -s_on)
    for i in range(n_online):
        from dualrl.data.buffer import add_transition

        state = add_transition(state, buffer.make_transition(o[i], a[i], 0.0, n[i], False,
                                                             1000 + i // 10))
    return state


@pytest.mark.slow
def test_energies_rank_online_rows_first_and_guidance_moves_samples_toward_them():
    agent, state = _agent(generator_steps=1500, energy_steps=400, guide_scale=1.0)
    buffer_state = _buffer()
    state = agent.retrain(state, buffer_state, jax.random.PRNGKey(2))
    report = agent.last_report
    assert report["energy_gap_state"] > 0.5, report  # online rows below the generator's own
    # positives vs negatives of each energy, on fresh draws at t = 0
    params = state.generator.ema_params
    free = agent.generate(params, jnp.zeros((256, agent.dim)), 0, jax.random.PRNGKey(3))
    online = jnp.tile(jnp.array([[2.0, -2.0, 0.0, 0.0, 0.0]]), (256, 1))
    e_free = agent.energy(state.energies.params, free, jnp.zeros(256))
    e_online = agent.energy(state.energies.params, online, jnp.zeros(256))
    assert float(e_online[0].mean()) < float(e_free[0].mean())
    # unguided samples follow B (mostly offline, s ≈ N(0, 1)); the guided pool moves toward
    # the online s ≈ 2, further with a larger guidance scale
    unguided_s = float(free[:, 0].mean())
    guided_s = float(state.pool[:, 0].mean())
    assert abs(unguided_s) < 0.5 and guided_s > unguided_s + 0.15, (unguided_s, guided_s)
    agent.settings.guide_scale = 4.0
    stronger = agent.generate(params, jnp.zeros((256, agent.dim)), 0, jax.random.PRNGKey(4),
                              state.energies.params)
    assert float(stronger[:, 0].mean()) > guided_s + 0.15, float(stronger[:, 0].mean())
    assert set(np.unique(np.asarray(state.pool[:, 3]))) <= {0.0, 1.0}
    assert int(state.pools) == 1


def _tiny(algo: str = "edis", **agent) -> TrainConfig:
    loop = LoopConfig(offline_steps=50, online_steps=100, eval_every=50, eval_episodes=2,
                      checkpoint_every=50, scan_chunk=50, batch_size=16, progress=False)
    small = dict(SMALL, generator_hidden=(16,), energy_hidden=(8,), retrain_every=40,
                 generator_steps=20, energy_steps=5, energy_rows=16, synthetic_size=32,
                 **agent)
    return TrainConfig(task="frozenlake-shift", algo=algo, seed=1, preset="quick", loop=loop,
                       agent=EDISConfig(**small), env=dict(map="4x4", data_episodes=50))


@pytest.mark.slow
def test_resumed_edis_run_matches_uninterrupted(resume_matches):
    """Crashed after its second pool: generator, energies and pool are the state."""
    _, records = resume_matches(_tiny(), 85)
    assert records[-1]["synthetic_pools"] == 2


@pytest.mark.slow
def test_dual_with_edis_augmentation_end_to_end(tmp_path, capsys):
    from dualrl.cli import main

    rc = main(["train", "--task", "frozenlake-shift", "--algo", "dual", "--preset", "quick",
               "--env.map", "4x4", "--env.data-episodes", "50", "--offline-steps", "50",
               "--online-steps", "100", "--eval-every", "100", "--eval-episodes", "2",
               "--batch-size", "16", "--progress", "false", "--dual.augment", "edis",
               "--dual.planner-steps", "20", "--dual.distill-steps-per-round", "5",
               "--dual.teacher-steps", "2", "--dual.refit-every", "50",
               "--dual.fit-samples", "64", "--dual.retrain-every", "50",
               "--dual.generator-steps", "20", "--dual.energy-steps", "5",
               "--dual.energy-rows", "16", "--dual.synthetic-size", "32",
               "--dual.sample-steps", "4", "--out", str(tmp_path / "run")])
    assert rc == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").open()]
    assert records[-1]["synthetic_pools"] == 2 and np.isfinite(records[-1]["score"])
    with pytest.raises(ValueError, match="augment"):
        from dualrl.algos.dual import DUALConfig

        DUALConfig(augment="vae")
