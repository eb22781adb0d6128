"""OFF2ON's balanced replay (Lee et al. 2022, "Offline-to-Online RL via Balanced Replay and
Pessimistic Q-Ensemble"; SPEC §1: a protocol option of the one loop, for every method).

Under uniform replay the online phase learns mostly from offline rows, many of them far from
what the current policy does. Balanced replay draws each row of B = D_off ∪ D_on with
probability ∝ its priority, the density ratio w(s, a) ≈ d^on(s, a) / d^off(s, a), so the
offline rows that look like online ones are replayed more:

- a ratio network w = relu(f(s, a)) (2 × 256 ReLU, last bias 1 so w starts near 1) takes one
  step per gradient update of the agent on the Jensen–Shannon variational bound
  L = E_off[−log(2 / (w + 1))] − E_on[log(2w / (w + 1))] over uniform offline and online rows;
- the rows the agent's batch drew get priority w^(1/T) / mean_off(w^(1/T)) (temperature
  T = 5 flattens the ratio), clamped to [1e-3, 1e3];
- offline rows start at priority 1; a new online row gets the largest priority seen so far,
  which starts at n_off · f / ((1 − f) · 1000): the first thousand online rows then make
  about a share f (0.5) of the draws, as the reference sets it.

Sampling is stratified inverse-CDF over the priorities (one cumulative sum per batch, O(|B|);
a sum tree would be O(batch · log|B|) but needs a scatter per tree level).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

# The reference's first online stretch: its priorities start so that this many online rows
# are drawn about a share `online_fraction` of the time.
FIRST_ONLINE_ROWS = 1_000
PRIORITY_RANGE = (1e-3, 1e3)
_EPS = 1e-10


class DensityRatio(nn.Module):
    """w(s, a) ≥ 0: relu of an MLP whose last bias starts at 1."""

    hidden: tuple[int, ...] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array, act: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, act], axis=-1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.relu(nn.Dense(1, bias_init=nn.initializers.ones)(x))[..., 0]


def js_ratio_loss(w_offline: jax.Array, w_online: jax.Array) -> jax.Array:
    """The Jensen–Shannon variational bound whose minimiser is w = d^on / d^off."""
    f_star = -jnp.log(2.0 / (w_offline + 1.0) + _EPS)
    f_prime = jnp.log(2.0 * w_online / (w_online + 1.0) + _EPS)
    return (f_star - f_prime).mean()


def prioritized_indices(priorities: jax.Array, end: jax.Array, key: jax.Array,
                        n: int) -> jax.Array:
    """n row indices in [0, end) drawn ∝ priorities, stratified: draw i falls in the i-th
    n-th of the cumulative mass (lower variance than n independent draws)."""
    mass = jnp.where(jnp.arange(priorities.shape[0]) < end, priorities, 0.0)
    cdf = jnp.cumsum(mass)
    u = (jnp.arange(n) + jax.random.uniform(key, (n,))) / n * cdf[-1]
    idx = jnp.searchsorted(cdf, u, side="right")
    return jnp.minimum(idx, end - 1).astype(jnp.int32)


@dataclass(frozen=True)
class BalancedReplay:
    """The estimator's settings and its pure functions over a buffer state (see the module
    docstring); the buffer carries its TrainState (`BufferState.ratio`)."""

    temperature: float = 5.0
    online_fraction: float = 0.5
    hidden: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    batch_size: int = 256  # uniform offline and online rows per estimator step

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("balanced_temperature (--balanced-temperature) must be > 0, got "
                             f"{self.temperature}")
        if not 0.0 < self.online_fraction < 1.0:
            raise ValueError("balanced_online_fraction (--balanced-online-fraction) must be in "
                             f"(0, 1), got {self.online_fraction}")

    @property
    def net(self) -> DensityRatio:
        return DensityRatio(hidden=tuple(self.hidden))

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> TrainState:
        params = self.net.init(key, jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)))
        return TrainState.create(apply_fn=self.net.apply, params=params,
                                 tx=optax.adam(self.lr))

    def first_online_priority(self, n_offline: int) -> float:
        """The priority of the first online rows (offline rows have 1)."""
        f = self.online_fraction
        return max(n_offline, 1) * f / ((1.0 - f) * FIRST_ONLINE_ROWS)

    def step(self, buffer_state: Any, indices: jax.Array, key: jax.Array,
             ) -> tuple[Any, dict[str, jax.Array]]:
        """One estimator step, then new priorities for the rows `indices` (the agent's batch):
        returns the buffer state with its `ratio` and `priorities` updated. Pure, jittable."""
        s = buffer_state
        n = self.batch_size
        k_off, k_on = jax.random.split(key)
        off = jax.random.randint(k_off, (n,), 0, s.n_offline)
        on = s.n_offline + jax.random.randint(k_on, (n,), 0,
                                              jnp.maximum(s.size - s.n_offline, 1))
        rows = jnp.concatenate([off, on, indices])

        def loss_fn(params):
            w = s.ratio.apply_fn(params, s.observations[rows], s.actions[rows])
            return js_ratio_loss(w[:n], w[n:2 * n]), w

        (loss, w), grads = jax.value_and_grad(loss_fn, has_aux=True)(s.ratio.params)
        w = jax.lax.stop_gradient(w)
        # the priorities come from the ratio before this step, as the reference computes them
        tempered = w ** (1.0 / self.temperature)
        new = jnp.clip(tempered[2 * n:] / (tempered[:n].mean() + _EPS), *PRIORITY_RANGE)
        priorities = s.priorities.at[indices].set(new)
        online = jnp.arange(priorities.shape[0]) >= s.n_offline
        total = priorities.sum()  # rows past `size` hold 0
        metrics = {"ratio_loss": loss, "ratio_w_offline": w[:n].mean(),
                   "ratio_w_online": w[n:2 * n].mean(),
                   "replay_online_mass": jnp.where(online, priorities, 0.0).sum() / total}
        return s._replace(ratio=s.ratio.apply_gradients(grads=grads), priorities=priorities,
                          max_priority=jnp.maximum(s.max_priority, new.max())), metrics
