"""What the SAC-family critics (Cal-QL, SO2) share: the entropy temperature, the actor loss
E_s[α log π(ã|s) − Q(s, ã)] with ã reparameterised, and the likelihood weights the shared
Laplace module reads that loss by.

The actor's distribution is a parameter (`Sampler`): the tanh-squashed Gaussian of the
base methods, or DUAL's plain Gaussian around the distilled student's mean. The critic
update draws the current policy's actions through a `PolicySampler` closed over the actor's
parameters, so one objective serves every actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from dualrl.actors.tanh_gaussian import temperature_loss

# (key, mean, log_std, num_samples | None) -> (actions (..., da), log π (...))
Sampler = Callable[..., tuple[jax.Array, jax.Array]]
# (obs (B, ds), key, num_samples | None) -> (actions, log π): the current policy's draws
PolicySampler = Callable[[jax.Array, jax.Array, int | None], tuple[jax.Array, jax.Array]]


def _scalar_state(value: float, lr: float) -> TrainState:
    """A learned scalar as a TrainState (its params a {"value": x} dict, as TrainState needs)."""
    return TrainState.create(apply_fn=None, params={"value": jnp.asarray(value, jnp.float32)},
                             tx=optax.adam(lr))


@flax.struct.dataclass
class SACTemperatures:
    """The scalars a SAC-family critic learns besides Q: log α (entropy temperature), log α'
    (Cal-QL's Lagrange multiplier of the CQL gap; unused otherwise) and whether the online
    phase has started (Cal-QL switches its CQL weight there)."""

    log_alpha: TrainState
    log_alpha_prime: TrainState
    online: jax.Array  # () bool

    @classmethod
    def create(cls, log_alpha: float, lr: float, log_alpha_prime: float = 0.0,
               prime_lr: float = 3e-4) -> SACTemperatures:
        return cls(log_alpha=_scalar_state(log_alpha, lr),
                   log_alpha_prime=_scalar_state(log_alpha_prime, prime_lr),
                   online=jnp.zeros((), bool))

    @property
    def alpha(self) -> jax.Array:
        return jnp.exp(self.log_alpha.params["value"])

    @property
    def alpha_prime(self) -> jax.Array:
        return jnp.clip(jnp.exp(self.log_alpha_prime.params["value"]), 0.0, 1e6)


def update_temperature(temps: SACTemperatures, log_pi: jax.Array,
                       target_entropy: float) -> tuple[SACTemperatures, jax.Array]:
    """One Adam step of log α on SAC's temperature loss at the policy's log densities."""
    loss, grad = jax.value_and_grad(
        lambda p: temperature_loss(p["value"], log_pi, target_entropy))(temps.log_alpha.params)
    return temps.replace(log_alpha=temps.log_alpha.apply_gradients(grads=grad)), loss


def sac_actor_loss(q_fn: Callable[[jax.Array, jax.Array], jax.Array], alpha: jax.Array,
                   sample: Sampler, mean: jax.Array, log_std: jax.Array, obs: jax.Array,
                   key: jax.Array) -> jax.Array:
    """E_s[α log π(ã|s) − Q(s, ã)], ã = sample(mean, log σ) reparameterised; q_fn(obs, a)
    -> (B,) is the critic's pessimistic value (min over heads for Cal-QL)."""
    action, log_pi = sample(key, mean, log_std, None)
    return jnp.mean(jax.lax.stop_gradient(alpha) * log_pi - q_fn(obs, action))


def soft_advantage_weights(q_fn: Callable[[jax.Array, jax.Array], jax.Array],
                           alpha: jax.Array, policy: PolicySampler, obs: jax.Array,
                           act: jax.Array, num_samples: int, max_weight: float) -> jax.Array:
    """w(s, a) = exp((Q(s, a) − V^π(s)) / α) within [1/max_weight, max_weight], V^π(s) the
    mean Q of `num_samples` policy draws (a fixed key: the Laplace refit is a deterministic
    function of the state). The SAC policy step projects π onto exp(Q/α) / Z; read on the buffer's
    actions that projection is a likelihood weighted by exp(A/α), whose Hessian in a linear
    head is the Gauss–Newton matrix the Laplace module builds (see `CalQLObjective`)."""
    b = obs.shape[0]
    draws, _ = policy(obs, jax.random.PRNGKey(0), num_samples)  # (B, N, da)
    obs_n = jnp.broadcast_to(obs[:, None], (b, num_samples, obs.shape[-1]))
    v = q_fn(obs_n, draws).mean(axis=-1)
    adv = q_fn(obs, act) - v
    # bounded to [1 / max_weight, max_weight]: as α shrinks online, exp(A/α) would otherwise
    # underflow to 0 on every row and the fit's normalisation by the mean weight is 0/0
    bound = jnp.log(max_weight)
    return jnp.exp(jnp.clip(adv / jnp.maximum(alpha, 1e-8), -bound, bound))


class SACCriticMethods:
    """The objective-interface methods every SAC-family critic shares (a mixin of the
    `CalQLObjective` / `SO2Objective` dataclasses, which hold the fields below): the Q
    ensemble's initialisation, the entropy target, the pessimistic Q, the SAC actor loss,
    its Laplace likelihood weights and the online switch."""

    critic_net: Any
    sample: Sampler
    critic_lr: float
    target_entropy: float | None
    n_actions: int
    max_weight: float

    def init_q(self, key: jax.Array, obs_dim: int, act_dim: int) -> tuple[TrainState, Any]:
        """The Q ensemble's train state and a copy of its parameters as the target."""
        params = self.critic_net.init(key, jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)))
        critic = TrainState.create(apply_fn=self.critic_net.apply, params=params,
                                   tx=optax.adam(self.critic_lr))
        return critic, jax.tree.map(jnp.copy, params)

    def entropy_target(self, act_dim: int) -> float:
        return -act_dim if self.target_entropy is None else self.target_entropy

    def min_q(self, params: Any) -> Callable[[jax.Array, jax.Array], jax.Array]:
        return lambda obs, act: self.critic_net.apply(params, obs, act).min(axis=0)

    def start_online(self, temps: SACTemperatures) -> SACTemperatures:
        return temps.replace(online=jnp.ones((), bool))

    def actor_loss(self, aux: Any, batch: Any, mean: jax.Array, log_std: jax.Array,
                   key: jax.Array) -> jax.Array:
        """aux = (critic params, α) from `update`."""
        params, alpha = aux
        return sac_actor_loss(self.min_q(params), alpha, self.sample, mean, log_std,
                              batch.observations, key)

    def likelihood_weights(self, critic: TrainState, temps: SACTemperatures,
                           target_params: Any, obs: jax.Array, act: jax.Array,
                           policy: PolicySampler) -> jax.Array:
        return soft_advantage_weights(self.min_q(critic.params), temps.alpha, policy, obs, act,
                                      self.n_actions, self.max_weight)
