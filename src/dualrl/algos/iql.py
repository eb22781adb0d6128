"""IQL with a Gaussian actor (Kostrikov et al. 2022; CORL's offline-to-online recipe).

One update, top to bottom: value (expectile) -> Q (TD to V(s')) -> actor (advantage-weighted
likelihood) -> Polyak target. The same update runs offline and online; online, the loop just
feeds it batches that include fresh transitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from dualrl.actors.gaussian import GaussianActor, gaussian_log_prob
from dualrl.critics import iql as iql_loss
from dualrl.critics.networks import QEnsemble, ValueNet
from dualrl.o2o.agent import Agent, Batch, Metrics


@dataclass
class IQLConfig:
    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    beta: float = 3.0
    max_weight: float = 100.0
    state_dependent_std: bool = False

    def __post_init__(self) -> None:
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden (--iql.hidden) needs >= 1 positive width, got {self.hidden}")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"expectile (--iql.expectile) must be in (0, 1), got {self.expectile}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau (--iql.tau) must be in (0, 1], got {self.tau}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma (--iql.gamma) must be in (0, 1], got {self.gamma}")


@flax.struct.dataclass
class IQLState:
    actor: TrainState
    critic: TrainState
    value: TrainState
    target_critic_params: flax.core.FrozenDict
    steps: jax.Array


class IQL(Agent):
    name = "iql"

    def __init__(self, config: IQLConfig):
        self.config = config
        self.actor_net: GaussianActor | None = None
        self.critic_net = QEnsemble(num_qs=2, hidden=config.hidden)
        self.value_net = ValueNet(hidden=config.hidden)

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> IQLState:
        cfg = self.config
        self.actor_net = GaussianActor(
            act_dim=act_dim, hidden=cfg.hidden, state_dependent_std=cfg.state_dependent_std
        )
        # One compiled call instead of hundreds of eager ops (seconds per process on CPU).
        return jax.jit(self._init, static_argnums=(1, 2))(key, obs_dim, act_dim)

    def _init(self, key: jax.Array, obs_dim: int, act_dim: int) -> IQLState:
        cfg = self.config
        k_actor, k_critic, k_value = jax.random.split(key, 3)
        obs, act = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
        critic_params = self.critic_net.init(k_critic, obs, act)
        return IQLState(
            actor=TrainState.create(
                apply_fn=self.actor_net.apply,
                params=self.actor_net.init(k_actor, obs),
                tx=optax.adam(cfg.actor_lr),
            ),
            critic=TrainState.create(
                apply_fn=self.critic_net.apply, params=critic_params, tx=optax.adam(cfg.critic_lr)
            ),
            value=TrainState.create(
                apply_fn=self.value_net.apply,
                params=self.value_net.init(k_value, obs),
                tx=optax.adam(cfg.value_lr),
            ),
            target_critic_params=jax.tree.map(jnp.copy, critic_params),
            steps=jnp.zeros((), jnp.int32),
        )

    def update(self, state: IQLState, batch: Batch, key: jax.Array) -> tuple[IQLState, Metrics]:
        cfg = self.config
        target_q = self.critic_net.apply(
            state.target_critic_params, batch.observations, batch.actions
        ).min(axis=0)

        # 1. V(s): upper expectile of the target Q over dataset actions.
        def value_loss_fn(params):
            v = self.value_net.apply(params, batch.observations)
            return iql_loss.value_loss(target_q, v, cfg.expectile), v

        (v_loss, v), v_grads = jax.value_and_grad(value_loss_fn, has_aux=True)(state.value.params)
        value = state.value.apply_gradients(grads=v_grads)

        # 2. Q(s, a): TD regression to r + γ V(s') with the updated V.
        next_v = self.value_net.apply(value.params, batch.next_observations)

        def critic_loss_fn(params):
            qs = self.critic_net.apply(params, batch.observations, batch.actions)
            return iql_loss.q_loss(qs, batch.rewards, batch.dones, next_v, cfg.gamma), qs

        (q_loss, qs), q_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            state.critic.params
        )
        critic = state.critic.apply_gradients(grads=q_grads)

        # 3. Actor: advantage-weighted log-likelihood of dataset actions (SPEC §5 / §7).
        weights = iql_loss.advantage_weights(target_q, v, cfg.beta, cfg.max_weight)

        def actor_loss_fn(params):
            mean, log_std = state.actor.apply_fn(params, batch.observations)
            log_prob = gaussian_log_prob(batch.actions, mean, log_std)
            return -(weights * log_prob).mean(), log_std

        (pi_loss, log_std), pi_grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.actor.params
        )
        actor = state.actor.apply_gradients(grads=pi_grads)

        # 4. Polyak-averaged target critic.
        target = optax.incremental_update(critic.params, state.target_critic_params, cfg.tau)

        new_state = IQLState(
            actor=actor, critic=critic, value=value, target_critic_params=target,
            steps=state.steps + 1,
        )
        metrics = {
            "value_loss": v_loss,
            "critic_loss": q_loss,
            "actor_loss": pi_loss,
            "q_mean": qs.mean(),
            "v_mean": v.mean(),
            "adv_weight_mean": weights.mean(),
            "actor_std": jnp.exp(log_std).mean(),
        }
        return new_state, metrics

    def act(self, state: IQLState, obs: jax.Array, key: jax.Array, explore: bool) -> jax.Array:
        mean, log_std = state.actor.apply_fn(state.actor.params, obs)
        if not explore:
            return mean
        return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
