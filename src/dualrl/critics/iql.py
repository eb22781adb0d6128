"""IQL's critic (Kostrikov et al. 2022): expectile value, TD Q, advantage weights.

Pure loss functions; the algorithm file (algos/iql.py) wires them into an update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from dualrl.actors.gaussian import gaussian_log_prob


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """Asymmetric L2: |τ − 1(diff < 0)| · diff², diff = Q − V."""
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return weight * diff**2


def value_loss(target_q: jax.Array, v: jax.Array, expectile: float) -> jax.Array:
    """V(s) regresses to an upper expectile of min_i Q_target,i(s, a) over dataset actions."""
    return expectile_loss(target_q - v, expectile).mean()


def q_loss(qs: jax.Array, rewards: jax.Array, dones: jax.Array, next_v: jax.Array,
           gamma: float, value_range: tuple[float, float] | None = None) -> jax.Array:
    """Every Q head regresses to r + γ(1 − done) V(s'); V replaces the max over actions.
    `value_range` (lo, hi) clips that target to the task's range of returns."""
    target = rewards + gamma * (1.0 - dones) * next_v
    target = jax.lax.stop_gradient(clip_to_range(target, value_range))
    return ((qs - target[None]) ** 2).mean(axis=1).sum()


def value_range(lo: float | None, hi: float | None,
                flag: str = "") -> tuple[float, float] | None:
    """(lo, hi) from two optional bounds; None when neither is set. Checks lo < hi."""
    if lo is None and hi is None:
        return None
    lo_, hi_ = -float("inf") if lo is None else lo, float("inf") if hi is None else hi
    if not lo_ < hi_:
        raise ValueError(f"value_min must be < value_max ({flag}.value-min / "
                         f"{flag}.value-max), got {lo} and {hi}")
    return lo_, hi_


def clip_to_range(x: jax.Array, value_range: tuple[float, float] | None) -> jax.Array:
    """x clipped to a `value_range` (lo, hi); unchanged when it is None."""
    return x if value_range is None else jnp.clip(x, *value_range)


def advantage_weights(target_q: jax.Array, v: jax.Array, beta: float,
                      max_weight: float) -> jax.Array:
    """w(s, a) = min(exp(β (Q − V)), max_weight): the AWR weights of SPEC §5."""
    return jnp.minimum(jnp.exp(beta * (target_q - v)), max_weight)


def critic_step(critic_net: Any, value_net: Any, critic: TrainState, value: TrainState,
                target_params: Any, batch: Any, expectile: float, gamma: float, tau: float,
                value_range: tuple[float, float] | None = None):
    """One IQL critic update, shared by every actor that sits on an IQL critic.

    V(s) → upper expectile of the target min-Q over dataset actions; then Q(s, a) → TD
    target with the updated V(s'); then Polyak target. Returns the new (critic, value,
    target) and, for the actor, the target Q and V(s) of this batch. `value_range` (lo, hi):
    both regression targets are clipped to the task's range of returns, so that an upper
    expectile cannot lift values above the largest return the task can give (issue 12, H3).
    """
    target_q = critic_net.apply(target_params, batch.observations, batch.actions).min(axis=0)
    target_q = clip_to_range(target_q, value_range)

    def value_loss_fn(params):
        v = value_net.apply(params, batch.observations)
        return value_loss(target_q, v, expectile), v

    (v_loss, v), v_grads = jax.value_and_grad(value_loss_fn, has_aux=True)(value.params)
    value = value.apply_gradients(grads=v_grads)
    next_v = value_net.apply(value.params, batch.next_observations)

    def critic_loss_fn(params):
        qs = critic_net.apply(params, batch.observations, batch.actions)
        return q_loss(qs, batch.rewards, batch.dones, next_v, gamma, value_range), qs

    (c_loss, qs), q_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(critic.params)
    critic = critic.apply_gradients(grads=q_grads)
    target_params = optax.incremental_update(critic.params, target_params, tau)
    metrics = {"value_loss": v_loss, "critic_loss": c_loss, "q_mean": qs.mean(),
               "v_mean": v.mean()}
    return critic, value, target_params, target_q, v, metrics


def init_critic_states(key: jax.Array, critic_net: Any, value_net: Any, obs_dim: int,
                       act_dim: int, critic_lr: float, value_lr: float):
    """(critic, value, target params) TrainStates for an IQL critic."""
    k_critic, k_value = jax.random.split(key)
    obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
    critic_params = critic_net.init(k_critic, obs, act)
    critic = TrainState.create(apply_fn=critic_net.apply, params=critic_params,
                               tx=optax.adam(critic_lr))
    value = TrainState.create(apply_fn=value_net.apply, params=value_net.init(k_value, obs),
                              tx=optax.adam(value_lr))
    return critic, value, jax.tree.map(jnp.copy, critic_params)


@dataclass(frozen=True)
class IQLObjective:
    """IQL's critic and the actor objective that goes with it, as ONE pluggable piece for
    actors that sit on a critic (DUAL's `--dual.critic`). Another critic (Cal-QL's SAC-style
    loss, SO2) provides the same methods:

    - `init(key, obs_dim, act_dim)` -> (critic, value, target params);
    - `update(critic, value, target, batch, policy, key)` -> the new three, the per-batch
      quantity the actor loss needs (here the advantage weights w), metrics; `policy(obs,
      key, n)` draws the current actor's actions (unused here);
    - `actor_loss(aux, batch, mean, log_std, key)` -> the actor's scalar loss (here the
      advantage-weighted Gaussian NLL −E[w log π(a|s)], SPEC §5);
    - `likelihood_weights(critic, value, target, obs, act, policy)` -> per-row weights of that
      loss, which the Laplace fit of SPEC §6 is about;
    - `actor_period(value)` -> how many critic steps per actor step (SO2: 10 online), and
      `start_online(value)` -> the value slot at the online switch (Cal-QL's α_cql switch).
    """

    critic_net: Any
    value_net: Any
    critic_lr: float
    value_lr: float
    expectile: float
    gamma: float
    tau: float
    beta: float
    max_weight: float
    value_range: tuple[float, float] | None = None

    def init(self, key: jax.Array, obs_dim: int, act_dim: int):
        return init_critic_states(key, self.critic_net, self.value_net, obs_dim, act_dim,
                                  self.critic_lr, self.value_lr)

    def update(self, critic: TrainState, value: TrainState, target_params: Any, batch: Any,
               policy: Any = None, key: jax.Array | None = None):
        """`policy` and `key` are part of the interface (SAC-family critics draw the current
        policy's actions); IQL's critic never queries the policy."""
        critic, value, target_params, target_q, v, metrics = critic_step(
            self.critic_net, self.value_net, critic, value, target_params, batch,
            self.expectile, self.gamma, self.tau, self.value_range)
        weights = advantage_weights(target_q, v, self.beta, self.max_weight)
        return critic, value, target_params, weights, {**metrics,
                                                       "adv_weight_mean": weights.mean()}

    def actor_period(self, value: TrainState) -> int:
        return 1  # the actor moves at every critic step

    def start_online(self, value: TrainState) -> TrainState:
        return value  # the same objective offline and online

    def actor_loss(self, weights: jax.Array, batch: Any, mean: jax.Array, log_std: jax.Array,
                   key: jax.Array) -> jax.Array:
        return -(weights * gaussian_log_prob(batch.actions, mean, log_std)).mean()

    def likelihood_weights(self, critic: TrainState, value: TrainState, target_params: Any,
                           obs: jax.Array, act: jax.Array, policy: Any = None) -> jax.Array:
        target_q = clip_to_range(self.critic_net.apply(target_params, obs, act).min(axis=0),
                                 self.value_range)
        v = self.value_net.apply(value.params, obs)
        return advantage_weights(target_q, v, self.beta, self.max_weight)
