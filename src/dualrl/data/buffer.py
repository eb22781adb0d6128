"""Offline-to-online replay buffer living on the device.

The offline data and room for every online transition are allocated once; online transitions
are written in place (buffer donation), and batches are drawn inside jitted code from these
arrays, so nothing is copied per step. Segment sampling for the planner (SPEC §2) uses
per-transition episode ids: a segment never crosses a change of id.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.data.balanced_replay import BalancedReplay, prioritized_indices
from dualrl.data.dataset import Dataset
from dualrl.data.normalizer import Normalizer

_FIELDS = ("observations", "actions", "rewards", "next_observations", "dones", "episode_ids")
_RATIO_PREFIX = "balanced_ratio_"


class Batch(NamedTuple):
    observations: jax.Array  # (B, ds), normalised
    actions: jax.Array  # (B, da)
    rewards: jax.Array  # (B,), scaled
    next_observations: jax.Array  # (B, ds), normalised
    dones: jax.Array  # (B,) float: 1 for true terminals only (time-outs bootstrap)
    # (B,) discounted Monte-Carlo return-to-go of offline rows (0 online, and 0 everywhere
    # unless the agent asks for it): Cal-QL's calibration bound V^μ(s)
    mc_returns: jax.Array | None = None
    indices: jax.Array | None = None  # (B,) the rows drawn (balanced replay writes back)
    # length-H segments starting at those rows, for agents that ask for them
    # (`Agent.segment_horizon`, e.g. Diffuser's planner fine-tuned on the loop's batches)
    segments: Segments | None = None


class BufferState(NamedTuple):
    observations: jax.Array  # (C, ds) normalised
    actions: jax.Array  # (C, da)
    rewards: jax.Array  # (C,) scaled
    next_observations: jax.Array  # (C, ds) normalised
    dones: jax.Array  # (C,) float32, true terminals only
    episode_ids: jax.Array  # (C,) int32
    n_offline: jax.Array  # () int32
    size: jax.Array  # () int32
    mc_returns: jax.Array  # (C,) float32, offline rows' return-to-go; 0 online (see Batch)
    # balanced replay (data/balanced_replay.py): each row's priority (offline 1, rows past
    # `size` 0), the priority a new row gets, and the density-ratio estimator's TrainState
    # (None without balanced replay)
    priorities: jax.Array | None = None  # (C,)
    max_priority: jax.Array | None = None  # ()
    ratio: Any = None


class BatchMix(NamedTuple):
    """How a training batch mixes offline and online rows (the loop's sampling protocol):
    uniform over B = D_off ∪ D_on when `online_ratio` is None; else that share of online
    rows (the newest `online_window` when > 0, ramped in over `online_warmup` online rows)
    and the rest from D_off, or from all of B with `rest_from_all` (SO2's concat batches).
    `prioritized`: the uniform part (all of a uniform batch, the rest of a mixed one) is drawn
    ∝ the rows' priorities instead (OFF2ON's balanced replay)."""

    online_ratio: float | None = None
    online_window: int = 0
    online_warmup: int = 0
    rest_from_all: bool = False
    prioritized: bool = False


class Transition(NamedTuple):
    """One online transition, already normalised/scaled as stored."""

    observation: jax.Array
    action: jax.Array
    reward: jax.Array
    next_observation: jax.Array
    done: jax.Array
    episode_id: jax.Array


class Segments(NamedTuple):
    observations: jax.Array  # (B, H, ds)
    actions: jax.Array  # (B, H, da)
    rewards: jax.Array  # (B, H)
    mask: jax.Array  # (B, H) 1 for real slots, 0 for padding past the episode end
    # each slot's s' and terminal flag (padding repeats the last real slot's): a return
    # over the segment bootstraps from the last real slot's s' unless it is terminal
    next_observations: jax.Array | None = None  # (B, H, ds)
    dones: jax.Array | None = None  # (B, H)


class MonteCarloReturns(NamedTuple):
    """An agent's request for the offline rows' returns-to-go (`Agent.monte_carlo_returns`):
    the discount, whether the task's reward is sparse (episodes that never succeed get
    r_min / (1 − γ), see `critics.calql.returns_to_go`), and the agent's own reward
    transform r' = scale · r + bias on top of the stored rewards (the returns are of r')."""

    gamma: float
    sparse: bool = False
    reward_scale: float = 1.0
    reward_bias: float = 0.0


class ReplayBuffer:
    """Static description (capacity, transforms) + pure functions over a `BufferState`."""

    def __init__(self, dataset: Dataset, online_capacity: int, normalizer: Normalizer,
                 reward_scale: float = 1.0, reward_bias: float = 0.0,
                 monte_carlo: MonteCarloReturns | None = None,
                 balanced: BalancedReplay | None = None):
        self.n_offline = len(dataset)
        self.online_capacity = int(online_capacity)
        self.capacity = self.n_offline + self.online_capacity
        self.obs_dim, self.act_dim = dataset.obs_dim, dataset.act_dim
        self.normalizer = normalizer
        self.reward_scale, self.reward_bias = float(reward_scale), float(reward_bias)
        assert dataset.episode_ends is not None
        ids = np.concatenate([[0], np.cumsum(dataset.episode_ends[:-1])]).astype(np.int32)
        self.n_offline_episodes = int(ids[-1]) + 1
        self._dataset = dataset
        self._offline_ids = ids
        self.monte_carlo = monte_carlo
        self.balanced = balanced
        self._add = jax.jit(add_transition, donate_argnums=0)

    # ---------------------------------------------------------------- state
    def init_state(self, key: jax.Array | None = None) -> BufferState:
        """Device arrays: offline part filled, online part zeros; with balanced replay the
        priorities and the density-ratio estimator (initialised from `key`)."""
        d, pad = self._dataset, self.online_capacity

        def padded(x: np.ndarray) -> jax.Array:
            x = np.asarray(x)
            return jnp.asarray(np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]))

        replay = {}
        if self.balanced is not None:
            key = jax.random.PRNGKey(0) if key is None else key
            replay = dict(
                priorities=padded(np.ones(self.n_offline, np.float32)),
                max_priority=jnp.asarray(self.balanced.first_online_priority(self.n_offline),
                                         jnp.float32),
                ratio=self.balanced.init(key, self.obs_dim, self.act_dim))

        return BufferState(
            observations=padded(self.normalizer(d.observations).astype(np.float32)),
            actions=padded(d.actions),
            rewards=padded(self.scale_reward(d.rewards).astype(np.float32)),
            next_observations=padded(self.normalizer(d.next_observations).astype(np.float32)),
            dones=padded(d.terminals.astype(np.float32)),
            episode_ids=padded(self._offline_ids),
            n_offline=jnp.asarray(self.n_offline, jnp.int32),
            size=jnp.asarray(self.n_offline, jnp.int32),
            mc_returns=padded(self.offline_returns_to_go()),
            **replay,
        )

    def offline_returns_to_go(self) -> np.ndarray:
        """The offline rows' discounted returns-to-go in the stored (scaled) reward units, as
        `monte_carlo` asks (zeros without it). Sparse: the failure value is the smallest
        stored reward over 1 − γ."""
        d, mc = self._dataset, self.monte_carlo
        if mc is None:
            return np.zeros(self.n_offline, np.float32)
        from dualrl.critics.calql import returns_to_go

        rewards = self.scale_reward(np.asarray(d.rewards, np.float64)) * mc.reward_scale \
            + mc.reward_bias
        r_min = float(rewards.min()) if mc.sparse and len(rewards) else None
        return returns_to_go(rewards, d.episode_slices(), mc.gamma, r_min)

    def scale_reward(self, r):
        return r * self.reward_scale + self.reward_bias

    def make_transition(self, obs, action, reward, next_obs, terminal, episode_id) -> Transition:
        """Normalise/scale a raw environment transition into the stored form (host arrays,
        so a jitted consumer receives it in one transfer)."""
        return Transition(
            observation=self.normalizer(np.asarray(obs, np.float32)).astype(np.float32),
            action=np.asarray(action, np.float32),
            reward=np.float32(self.scale_reward(float(reward))),
            next_observation=self.normalizer(np.asarray(next_obs, np.float32)).astype(
                np.float32
            ),
            done=np.float32(terminal),
            episode_id=np.int32(episode_id),
        )

    def add(self, state: BufferState, transition: Transition) -> BufferState:
        """Append in place (the old state is donated: do not reuse it)."""
        if int(state.size) >= self.capacity:
            raise RuntimeError(f"replay buffer full ({self.capacity} transitions)")
        return self._add(state, transition)

    # ---------------------------------------------------------- checkpoints
    def online_arrays(self, state: BufferState) -> dict[str, np.ndarray]:
        """What a checkpoint keeps of the buffer: the online rows, and with balanced replay
        every row's priority and the ratio estimator's leaves."""
        lo, hi = self.n_offline, int(state.size)
        arrays = {f: np.asarray(getattr(state, f)[lo:hi]) for f in _FIELDS}
        if self.balanced is not None:
            arrays["priorities"] = np.asarray(state.priorities[:hi])
            arrays["max_priority"] = np.asarray(state.max_priority)
            for i, leaf in enumerate(jax.tree.leaves(state.ratio)):
                arrays[f"{_RATIO_PREFIX}{i}"] = np.asarray(leaf)
        return arrays

    def restore_online(self, state: BufferState, arrays: dict[str, np.ndarray]) -> BufferState:
        n = len(arrays["rewards"])
        if n > self.online_capacity:
            raise ValueError(f"checkpoint holds {n} online transitions, capacity is "
                             f"{self.online_capacity}")
        lo = self.n_offline
        updates = {f: getattr(state, f).at[lo:lo + n].set(jnp.asarray(arrays[f]))
                   for f in _FIELDS}
        if self.balanced is not None and "priorities" in arrays:
            leaves, tree = jax.tree.flatten(state.ratio)
            saved = [arrays.get(f"{_RATIO_PREFIX}{i}") for i in range(len(leaves))]
            if len(arrays["priorities"]) != lo + n or any(
                    a is None or a.shape != np.shape(x)
                    for a, x in zip(saved, leaves, strict=True)):
                raise ValueError("checkpoint's balanced-replay state does not fit this run")
            updates.update(
                priorities=state.priorities.at[:lo + n].set(jnp.asarray(arrays["priorities"])),
                max_priority=jnp.asarray(arrays["max_priority"], jnp.float32),
                ratio=jax.tree.unflatten(tree, [jnp.asarray(a) for a in saved]))
        return state._replace(**updates, size=jnp.asarray(lo + n, jnp.int32))

    # -------------------------------------------------------------- sampling
    @staticmethod
    def sample(state: BufferState, key: jax.Array, batch_size: int,
               online_ratio: float | None = None, online_window: int = 0,
               online_warmup: int = 0, rest_from_all: bool = False,
               prioritized: bool = False) -> Batch:
        """Uniform over B = D_off ∪ D_on, or a fixed share `online_ratio` of online samples
        (drawn from the newest `online_window` online transitions when > 0; while fewer than
        `online_warmup` online transitions exist, each online slot is online only with
        probability n_online / online_warmup, so a handful of rows is not replayed to death).
        The rest of a mixed batch is offline, or drawn from all of B with `rest_from_all`.
        `prioritized`: the uniform draws follow the rows' priorities (balanced replay).

        Pure and jittable. With no online data yet, a mixed batch is all offline.
        """
        idx = sample_indices(state, key, batch_size, online_ratio, online_window, online_warmup,
                             rest_from_all, prioritized)
        return Batch(
            observations=state.observations[idx],
            actions=state.actions[idx],
            rewards=state.rewards[idx],
            next_observations=state.next_observations[idx],
            dones=state.dones[idx],
            mc_returns=state.mc_returns[idx],
            indices=idx,
        )

    @staticmethod
    def sample_segments(state: BufferState, key: jax.Array, batch_size: int,
                        horizon: int) -> Segments:
        """Length-H segments inside one episode; the tail past the episode end is padded by
        repeating the last state with zero action and masked out (SPEC §2)."""
        start = jax.random.randint(key, (batch_size,), 0, state.size)
        return ReplayBuffer.segments_at(state, start, horizon)

    @staticmethod
    def segments_at(state: BufferState, start: jax.Array, horizon: int) -> Segments:
        """The length-H segments starting at rows `start` (B,), padded and masked as
        `sample_segments`'."""
        offsets = jnp.arange(horizon)
        raw = start[:, None] + offsets[None, :]  # (B, H)
        in_range = raw < state.size
        same_episode = state.episode_ids[jnp.minimum(raw, state.size - 1)] == (
            state.episode_ids[start][:, None]
        )
        # Valid slots form a prefix: stop at the first slot that leaves the episode.
        mask = jnp.cumprod(in_range & same_episode, axis=1).astype(jnp.float32)
        last = start + mask.sum(axis=1).astype(jnp.int32) - 1
        idx = jnp.where(mask > 0, raw, last[:, None])
        return Segments(
            observations=state.observations[idx],
            actions=state.actions[idx] * mask[..., None],
            rewards=state.rewards[idx] * mask,
            mask=mask,
            next_observations=state.next_observations[idx],
            dones=state.dones[idx],
        )


def sample_indices(state: BufferState, key: jax.Array, batch_size: int,
                   online_ratio: float | None, online_window: int = 0,
                   online_warmup: int = 0, rest_from_all: bool = False,
                   prioritized: bool = False) -> jax.Array:
    if prioritized and state.priorities is None:
        raise ValueError("prioritized sampling needs a buffer built with balanced replay")

    def uniform(k, n, end):
        if prioritized:
            return prioritized_indices(state.priorities, end, k, n)
        return jax.random.randint(k, (n,), 0, end)

    if online_ratio is None:
        return uniform(key, batch_size, state.size)
    n_online = int(round(online_ratio * batch_size))
    k_off, k_on = jax.random.split(key)
    rest_end = state.size if rest_from_all else state.n_offline
    off = uniform(k_off, batch_size - n_online, rest_end)
    n_on_avail = state.size - state.n_offline
    first = state.n_offline  # the online rows sampled: all, or the newest `online_window`
    if online_window > 0:
        first = jnp.maximum(state.n_offline, state.size - online_window)
    on = first + jax.random.randint(k_on, (n_online,), 0, jnp.maximum(state.size - first, 1))
    fallback = jax.random.randint(k_on, (n_online,), 0, state.n_offline)
    use_online = n_on_avail > 0
    if online_warmup > 0:
        k_on, k_mix = jax.random.split(k_on)
        share = jnp.minimum(1.0, n_on_avail / online_warmup)
        use_online = use_online & (jax.random.uniform(k_mix, (n_online,)) < share)
    on = jnp.where(use_online, on, fallback)
    return jnp.concatenate([off, on])


def add_transition(state: BufferState, t: Transition) -> BufferState:
    i = state.size
    return state._replace(
        observations=state.observations.at[i].set(t.observation),
        actions=state.actions.at[i].set(t.action),
        rewards=state.rewards.at[i].set(t.reward),
        next_observations=state.next_observations.at[i].set(t.next_observation),
        dones=state.dones.at[i].set(t.done),
        episode_ids=state.episode_ids.at[i].set(t.episode_id),
        size=i + 1,
        **({} if state.priorities is None else
           {"priorities": state.priorities.at[i].set(state.max_priority)}),
    )
