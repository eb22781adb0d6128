"""Property tests: episode boundaries always partition the dataset."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dualrl.data import Dataset
from dualrl.data.dataset import derive_episode_ends


@st.composite
def transitions(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.integers(1, 40))
    flags = st.lists(st.booleans(), min_size=n, max_size=n)
    terminals = np.array(draw(flags))
    timeouts = np.array(draw(flags))
    jumps = np.array(draw(flags))  # where s'_i does not continue into s_{i+1}
    states = np.cumsum(np.ones((n + 1, 2), np.float32), axis=0)
    obs = states[:-1].copy()
    nxt = states[1:].copy()
    nxt[jumps] += 100.0
    return {
        "observations": obs,
        "next_observations": nxt,
        "actions": np.zeros((n, 1), np.float32),
        "rewards": np.ones(n, np.float32),
        "terminals": terminals,
        "timeouts": timeouts,
        "jumps": jumps,
    }


@settings(max_examples=100, deadline=None)
@given(transitions())
def test_episode_slices_partition(data: dict[str, np.ndarray]) -> None:
    jumps = data.pop("jumps")
    n = len(data["rewards"])
    ends = derive_episode_ends(
        data["observations"], data["next_observations"], data["terminals"], data["timeouts"]
    )
    expected = data["terminals"] | data["timeouts"] | jumps
    expected[-1] = True
    np.testing.assert_array_equal(ends, expected)

    ds = Dataset(**data)
    slices = ds.episode_slices()
    assert slices[0].start == 0 and slices[-1].stop == n
    for a, b in zip(slices, slices[1:], strict=False):
        assert a.stop == b.start  # contiguous, no gaps, no overlaps
    assert all(s.stop > s.start for s in slices)
    assert [s.stop - 1 for s in slices] == list(np.flatnonzero(ends))
    assert len(slices) == ds.num_episodes
    assert sum(ds.episode_returns()) == n


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_explicit_episode_ends_partition(flags: list[bool]) -> None:
    n = len(flags)
    ds = Dataset(
        observations=np.zeros((n, 1)),
        actions=np.zeros((n, 1)),
        rewards=np.ones(n),
        next_observations=np.zeros((n, 1)),
        terminals=np.zeros(n, bool),
        timeouts=np.zeros(n, bool),
        episode_ends=np.array(flags),
    )
    covered = np.concatenate([np.arange(n)[s] for s in ds.episode_slices()])
    np.testing.assert_array_equal(covered, np.arange(n))
    assert ds.episode_ends[-1]
