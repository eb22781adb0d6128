import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.data.buffer import ReplayBuffer
from dualrl.data.dataset import Dataset
from dualrl.data.normalizer import Normalizer


def _dataset(episode_lengths, obs_dim=3, act_dim=2):
    n = sum(episode_lengths)
    ends = np.zeros(n, bool)
    ends[np.cumsum(episode_lengths) - 1] = True
    obs = np.arange(n * obs_dim, dtype=np.float32).reshape(n, obs_dim)
    return Dataset(
        observations=obs,
        actions=np.tile(np.arange(n, dtype=np.float32)[:, None], (1, act_dim)),
        rewards=np.arange(n, dtype=np.float32),
        next_observations=obs + 1000.0,
        terminals=ends,
        timeouts=np.zeros(n, bool),
    )


def _buffer(ds, online=10):
    return ReplayBuffer(ds, online_capacity=online, normalizer=Normalizer.identity(ds.obs_dim))


def test_uniform_sample_covers_offline_data_only_before_online():
    ds = _dataset([5, 7, 3])
    buf = _buffer(ds)
    state = buf.init_state()
    batch = jax.jit(lambda s, k: ReplayBuffer.sample(s, k, 4096))(state, jax.random.PRNGKey(0))
    seen = np.unique(np.asarray(batch.rewards))
    np.testing.assert_array_equal(seen, np.arange(15))
    # rows stay aligned across fields
    np.testing.assert_array_equal(np.asarray(batch.actions[:, 0]), np.asarray(batch.rewards))


def test_add_and_mixing_ratio():
    ds = _dataset([20, 20])
    buf = _buffer(ds, online=50)
    state = buf.init_state()
    for i in range(5):
        t = buf.make_transition(np.full(3, -1.0), np.zeros(2), 100 + i, np.full(3, -2.0),
                                False, buf.n_offline_episodes)
        state = buf.add(state, t)
    assert int(state.size) == 45
    batch = ReplayBuffer.sample(state, jax.random.PRNGKey(1), 1000, online_ratio=0.25)
    r = np.asarray(batch.rewards)
    assert (r >= 100).sum() == 250  # exactly the requested online share
    assert set(np.unique(r[r >= 100])) == {100, 101, 102, 103, 104}


def test_mixed_batch_falls_back_to_offline_when_no_online_data():
    ds = _dataset([10])
    state = _buffer(ds).init_state()
    r = np.asarray(ReplayBuffer.sample(state, jax.random.PRNGKey(0), 200, 0.5).rewards)
    assert r.max() < 10


def test_buffer_full_raises():
    ds = _dataset([4])
    buf = _buffer(ds, online=1)
    state = buf.init_state()
    t = buf.make_transition(np.zeros(3), np.zeros(2), 0.0, np.zeros(3), False, 1)
    state = buf.add(state, t)
    with pytest.raises(RuntimeError, match="full"):
        buf.add(state, t)


@pytest.mark.parametrize("horizon", [1, 4, 9])
def test_segments_never_cross_an_episode_end(horizon):
    lengths = [3, 8, 1, 6]
    ds = _dataset(lengths)
    buf = _buffer(ds, online=8)
    state = buf.init_state()
    # an unfinished online episode: segments must stop at the buffer's end
    for i in range(4):
        t = buf.make_transition(np.zeros(3), np.zeros(2), 50 + i, np.zeros(3), False,
                                buf.n_offline_episodes)
        state = buf.add(state, t)
    seg = jax.jit(lambda s, k: ReplayBuffer.sample_segments(s, k, 2000, horizon))(
        state, jax.random.PRNGKey(3))
    ids = np.asarray(state.episode_ids)
    rewards_to_index = {float(r): i for i, r in enumerate(np.asarray(state.rewards)[:22])}
    mask = np.asarray(seg.mask)
    assert (mask[:, 0] == 1).all()
    # valid slots are a prefix of each segment
    assert (np.diff(mask, axis=1) <= 0).all()
    rew = np.asarray(seg.rewards)
    for b in range(200):
        start = rewards_to_index[float(rew[b, 0])]
        n_valid = int(mask[b].sum())
        idx = np.arange(start, start + n_valid)
        assert (ids[idx] == ids[start]).all()
        # the segment is cut exactly at the episode end (or the buffer end)
        nxt = start + n_valid
        if n_valid < horizon:
            assert nxt == 22 or ids[nxt] != ids[start]
        np.testing.assert_array_equal(rew[b, :n_valid], np.asarray(state.rewards)[idx])
        # padding repeats the last real state with zero action
        obs = np.asarray(seg.observations[b])
        for k in range(n_valid, horizon):
            np.testing.assert_array_equal(obs[k], obs[n_valid - 1])
            assert not np.asarray(seg.actions[b, k]).any()


def test_online_arrays_round_trip():
    ds = _dataset([6])
    buf = _buffer(ds, online=5)
    state = buf.init_state()
    for i in range(3):
        t = buf.make_transition(np.full(3, i), np.ones(2), i, np.full(3, i + 1), i == 2, 1)
        state = buf.add(state, t)
    saved = buf.online_arrays(state)
    fresh = buf.restore_online(buf.init_state(), saved)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(fresh), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_normalizer_fit_and_stored_observations():
    ds = _dataset([10, 10])
    norm = Normalizer.fit(ds.observations)
    np.testing.assert_allclose(norm(ds.observations).mean(0), 0.0, atol=1e-5)
    assert np.allclose(norm.unnormalize(norm(ds.observations)), ds.observations, atol=1e-3)
    buf = ReplayBuffer(ds, online_capacity=0, normalizer=norm)
    state = buf.init_state()
    np.testing.assert_allclose(np.asarray(state.observations), norm(ds.observations), rtol=1e-6)
    assert Normalizer.from_dict(norm.to_dict()).std.tolist() == norm.std.tolist()
    # eps keeps constant features finite
    const = Normalizer.fit(np.ones((5, 2)))
    assert np.isfinite(const(np.ones((1, 2)))).all()
    assert jnp.asarray(const(jnp.ones((1, 2)))).shape == (1, 2)


def _with_online(n_online: int, capacity: int = 50):
    buf = _buffer(_dataset([20, 20]), online=capacity)
    state = buf.init_state()
    for i in range(n_online):
        t = buf.make_transition(np.full(3, -1.0), np.zeros(2), 100 + i, np.full(3, -2.0),
                                False, buf.n_offline_episodes)
        state = buf.add(state, t)
    return state


def test_online_window_draws_only_the_newest_online_rows():
    state = _with_online(30)
    r = np.asarray(ReplayBuffer.sample(state, jax.random.PRNGKey(2), 2000, online_ratio=0.5,
                                       online_window=10).rewards)
    online = r[r >= 100]
    assert len(online) == 1000 and set(np.unique(online)) == set(range(120, 130))
    assert set(np.unique(r[r < 100])) == set(range(40))  # the offline half is untouched


def test_online_warmup_ramps_the_online_share():
    """With 10 of a 40-row warm-up, each online slot is online with probability 1/4."""
    state = _with_online(10)
    r = np.asarray(ReplayBuffer.sample(state, jax.random.PRNGKey(3), 8000, online_ratio=0.5,
                                       online_warmup=40).rewards)
    share = (r >= 100).mean()
    assert abs(share - 0.5 * 10 / 40) < 0.02
    full = np.asarray(ReplayBuffer.sample(_with_online(45), jax.random.PRNGKey(3), 8000,
                                          online_ratio=0.5, online_warmup=40).rewards)
    assert (full >= 100).mean() == 0.5
