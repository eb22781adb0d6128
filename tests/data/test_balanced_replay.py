"""OFF2ON's balanced replay: draws follow the priorities, the ratio estimator ranks offline rows
like the online ones above the others, new rows get the running maximum, and the state survives
a checkpoint (runs with it: tests/o2o/test_balanced_run.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.config import LoopConfig
from dualrl.data.balanced_replay import (
    FIRST_ONLINE_ROWS,
    BalancedReplay,
    js_ratio_loss,
    prioritized_indices,
)
from dualrl.data.buffer import ReplayBuffer, add_transition
from dualrl.data.dataset import Dataset
from dualrl.data.normalizer import Normalizer


def _two_cluster_dataset(n_per_cluster: int = 200) -> Dataset:
    """Offline rows from two clusters of (s, a): around −1 (rows 0..n−1) and +1 (the rest)."""
    rng = np.random.default_rng(0)
    centre = np.repeat([-1.0, 1.0], n_per_cluster)[:, None]
    obs = (centre + 0.1 * rng.standard_normal((2 * n_per_cluster, 2))).astype(np.float32)
    act = (centre + 0.1 * rng.standard_normal((2 * n_per_cluster, 1))).astype(np.float32)
    n = len(obs)
    terminals = np.zeros(n, bool)
    terminals[n_per_cluster - 1] = terminals[-1] = True
    return Dataset(observations=obs, actions=act, rewards=np.zeros(n, np.float32),
                   next_observations=obs, terminals=terminals, timeouts=np.zeros(n, bool))


def _buffer(ds: Dataset, online: int, replay: BalancedReplay | None = None) -> ReplayBuffer:
    return ReplayBuffer(ds, online_capacity=online, normalizer=Normalizer.identity(ds.obs_dim),
                        balanced=replay)


def _add(buf: ReplayBuffer, state, obs, act):
    t = buf.make_transition(obs, act, 0.0, obs, False, 99)
    return add_transition(state, jax.tree.map(jnp.asarray, t))


def test_prioritized_draws_follow_the_priorities_and_stay_below_the_end():
    priorities = jnp.asarray([1.0, 3.0, 0.0, 6.0, 5.0, 7.0])  # the last two past the end
    idx = np.asarray(jax.jit(prioritized_indices, static_argnums=3)(
        priorities, jnp.asarray(4), jax.random.PRNGKey(0), 20_000))
    assert idx.min() >= 0 and idx.max() <= 3
    freq = np.bincount(idx, minlength=4) / len(idx)
    np.testing.assert_allclose(freq, [0.1, 0.3, 0.0, 0.6], atol=0.01)


def test_the_ratio_loss_is_minimised_at_the_density_ratio():
    """Pointwise, E_off[f*(w)] − E_on[f'(w)] with d_on = r · d_off is smallest at w = r: the
    loss of one offline and one online copy of w, its online term weighted r."""
    ws = jnp.linspace(0.05, 8.0, 2000)
    for r in (0.25, 1.0, 3.0):
        def loss(w, r=r):
            one = jnp.full((1,), w)
            return js_ratio_loss(one, one) - (r - 1.0) * jnp.log(2.0 * w / (w + 1.0))

        assert float(ws[jnp.argmin(jax.vmap(loss)(ws))]) == pytest.approx(r, rel=0.02)


def test_offline_rows_like_the_online_ones_get_the_higher_priorities():
    ds = _two_cluster_dataset()
    replay = BalancedReplay(batch_size=128, hidden=(32, 32), lr=3e-3)
    buf = _buffer(ds, online=200, replay=replay)
    state = buf.init_state(jax.random.PRNGKey(1))
    rng = np.random.default_rng(1)
    for _ in range(200):  # online rows only near the +1 cluster
        state = _add(buf, state, 1.0 + 0.1 * rng.standard_normal(2),
                     1.0 + 0.1 * rng.standard_normal(1))
    step = jax.jit(replay.step)
    every_offline_row = jnp.arange(buf.n_offline)
    for i in range(300):
        state, metrics = step(state, every_offline_row, jax.random.PRNGKey(i))
    p = np.asarray(state.priorities[:buf.n_offline])
    near, far = p[200:], p[:200]
    assert np.median(near) > 5 * np.median(far), (np.median(near), np.median(far))
    assert float(metrics["ratio_w_online"]) > float(metrics["ratio_w_offline"])
    # the priorities are normalised by the offline rows' mean tempered ratio, within bounds
    assert p.min() >= 1e-3 and p.max() <= 1e3
    # a draw of the whole of B now favours the near cluster
    idx = np.asarray(ReplayBuffer.sample(state, jax.random.PRNGKey(7), 4096,
                                         prioritized=True).indices)
    offline = idx[idx < buf.n_offline]
    assert (offline >= 200).mean() > 0.8


def test_new_rows_get_the_running_maximum_and_the_first_ones_the_online_fraction():
    ds = _two_cluster_dataset()
    replay = BalancedReplay(online_fraction=0.3)
    buf = _buffer(ds, online=FIRST_ONLINE_ROWS, replay=replay)
    state = buf.init_state()
    first = replay.first_online_priority(buf.n_offline)
    np.testing.assert_array_equal(np.asarray(state.priorities[:buf.n_offline]), 1.0)
    state = _add(buf, state, np.zeros(2), np.zeros(1))
    assert float(state.priorities[buf.n_offline]) == pytest.approx(first)
    # after the reference's first stretch of online rows, they hold the online fraction
    online_mass = FIRST_ONLINE_ROWS * first
    assert online_mass / (online_mass + buf.n_offline) == pytest.approx(0.3)
    # a re-prioritised row above the maximum raises what the next new row gets
    state = state._replace(max_priority=jnp.maximum(state.max_priority, 500.0))
    state = _add(buf, state, np.zeros(2), np.zeros(1))
    assert float(state.priorities[buf.n_offline + 1]) == 500.0


def test_checkpoint_arrays_restore_the_priorities_and_the_estimator():
    ds = _two_cluster_dataset()
    replay = BalancedReplay(batch_size=16, hidden=(8,))
    buf = _buffer(ds, online=20, replay=replay)
    state = buf.init_state(jax.random.PRNGKey(0))
    for i in range(5):
        state = _add(buf, state, np.full(2, i, np.float32), np.zeros(1))
    for i in range(3):
        state, _ = replay.step(state, jnp.arange(8) * 50, jax.random.PRNGKey(i))
    restored = buf.restore_online(buf.init_state(jax.random.PRNGKey(5)),
                                  buf.online_arrays(state))
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = _buffer(ds, online=20, replay=BalancedReplay(batch_size=16, hidden=(4,)))
    with pytest.raises(ValueError, match="balanced-replay state does not fit"):
        other.restore_online(other.init_state(), buf.online_arrays(state))


def test_settings_are_validated_with_the_flag_names():
    with pytest.raises(ValueError, match="--balanced-temperature"):
        LoopConfig(balanced_replay=True, balanced_temperature=0.0)
    with pytest.raises(ValueError, match="--balanced-online-fraction"):
        LoopConfig(balanced_replay=True, balanced_online_fraction=1.0)
