"""What the SAC-family baselines (Cal-QL, SO2) share: a tanh-Gaussian actor on a Q ensemble,
one update (critic step of the method's objective, then the actor on E[α log π − min Q]),
acting, and "<method> w LA" through the shared Laplace module.

A method is its config (a `SACFamilyConfig` with its own fields) and its objective
(`critics/calql.py`, `critics/so2.py`): the objective decides the critic step, how often the
actor moves (`actor_period`: SO2 updates it every 10 critic steps online) and what changes at
the online switch (`start_online`).

Laplace ("w LA"): the SAC loss is read as the likelihood of buffer actions weighted by
exp(A/α) (critics.sac.soft_advantage_weights); in pre-squash space that likelihood is
exactly Gaussian in u = φ̃W, so its Hessian in the mean head W is the Gauss–Newton matrix
Σ w φ̃φ̃ᵀ / σ² the shared module builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import flax
import jax
import jax.numpy as jnp
from flax.training.train_state import TrainState

from dualrl.actors.tanh_gaussian import TanhGaussianActor
from dualrl.algos.laplace_acting import LaplaceActing
from dualrl.config import check_agent_fields
from dualrl.critics.sac import SACTemperatures
from dualrl.data.buffer import Batch
from dualrl.nn.optim import actor_adam
from dualrl.o2o.agent import ActContext, Agent, Metrics, actor_critic_acting_view
from dualrl.uq.mixture import mixture_moments


@dataclass
class SACFamilyConfig:
    """Fields every SAC-family method has (its flags are --<method>.<field>)."""

    flag: ClassVar[str] = "sac"  # the method's flag prefix, for error messages
    hidden: tuple[int, ...] = (256, 256)  # Q networks
    actor_hidden: tuple[int, ...] = (256, 256, 256)
    actor_lr: float = 3e-4  # also the temperature's lr
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    target_entropy: float | None = None  # None: −|A|
    orthogonal: bool = True
    layer_norm: bool = False
    # TD targets clipped to the task's return range (as IQLConfig's; the Frozen-Lake presets
    # set [0, 1] for every method)
    value_min: float | None = None
    value_max: float | None = None
    # "<method> w LA": last-layer Laplace acting on the actor (SPEC §6, --<method>.laplace)
    laplace: bool = False
    max_weight: float = 100.0
    num_samples: int = 10
    refit_every: int = 5_000
    fit_samples: int = 100_000
    temperature: float = 1.0

    def __post_init__(self) -> None:
        check_agent_fields(self, self.flag)


@flax.struct.dataclass
class SACState:
    actor: TrainState
    critic: TrainState
    value: SACTemperatures  # the objective's scalars (the slot IQL's V network fills)
    target_critic_params: flax.core.FrozenDict
    deltas: jax.Array  # (M, F+1, da) Laplace draws minus the MAP head ("w LA")
    prior_precision: jax.Array
    refits: jax.Array
    steps: jax.Array  # critic updates
    actor_steps: jax.Array  # actor updates (fewer than `steps` where actor_period > 1)


class SACAgent(LaplaceActing, Agent):
    """A tanh-Gaussian actor trained on `objective` (see the module docstring)."""

    def __init__(self, config: SACFamilyConfig, objective: Any):
        self.config = config
        self.objective = objective
        self.actor_net: TanhGaussianActor | None = None

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> SACState:
        self.actor_net = TanhGaussianActor(act_dim=act_dim, hidden=self.config.actor_hidden,
                                           orthogonal=self.config.orthogonal)
        return jax.jit(self._init, static_argnums=(1, 2))(key, obs_dim, act_dim)

    def _init(self, key: jax.Array, obs_dim: int, act_dim: int) -> SACState:
        cfg = self.config
        k_actor, k_critic = jax.random.split(key)
        critic, temps, target = self.objective.init(k_critic, obs_dim, act_dim)
        zero = jnp.zeros((), jnp.int32)
        return SACState(
            actor=TrainState.create(apply_fn=self.actor_net.apply,
                                    params=self.actor_net.init(k_actor, jnp.zeros((1, obs_dim))),
                                    tx=actor_adam(cfg.actor_lr)),
            critic=critic, value=temps, target_critic_params=target,
            deltas=jnp.zeros((cfg.num_samples, cfg.actor_hidden[-1] + 1, act_dim)),
            prior_precision=jnp.zeros(()), refits=zero, steps=zero, actor_steps=zero)

    def policy(self, params):
        """The current policy's sampler (obs, key, n) -> (a, log π) for the critic update."""
        def draw(obs, key, num_samples):
            mean, log_std = self.actor_net.apply(params, obs)
            return self.objective.sample(key, mean, log_std, num_samples)

        return draw

    def update(self, state: SACState, batch: Batch, key: jax.Array) -> tuple[SACState, Metrics]:
        k_critic, k_actor = jax.random.split(key)
        # 1. The method's critic step (temperature, Q, its extras, Polyak target).
        critic, temps, target, aux, metrics = self.objective.update(
            state.critic, state.value, state.target_critic_params, batch,
            self.policy(state.actor.params), k_critic)

        # 2. Actor, every `actor_period` critic steps: E[α log π(ã|s) − min_h Q_h(s, ã)].
        def actor_loss_fn(params):
            mean, log_std = self.actor_net.apply(params, batch.observations)
            return self.objective.actor_loss(aux, batch, mean, log_std, k_actor), log_std

        def step_actor(actor):
            (loss, log_std), grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
                actor.params)
            return actor.apply_gradients(grads=grads), loss, jnp.exp(log_std).mean(), 1

        def keep_actor(actor):
            return actor, jnp.zeros(()), jnp.zeros(()), 0

        due = state.steps % self.objective.actor_period(state.value) == 0
        actor, pi_loss, pi_std, stepped = jax.lax.cond(due, step_actor, keep_actor, state.actor)
        new = state.replace(actor=actor, critic=critic, value=temps, target_critic_params=target,
                            steps=state.steps + 1, actor_steps=state.actor_steps + stepped)
        # per-update sums as every metric (the loop divides by the updates): an actor that
        # moves every k-th update reports its loss × 1/k on average; actor_updates counts
        return new, {**metrics, "actor_loss": pi_loss, "actor_std": pi_std,
                     "actor_updates": jnp.asarray(stepped, jnp.float32)}

    def on_phase_start(self, state: SACState, phase: str, buffer, buffer_state, key):
        if phase == "online":
            state = state.replace(value=self.objective.start_online(state.value))
        return super().on_phase_start(state, phase, buffer, buffer_state, key)

    def q_value(self, state: SACState, obs: jax.Array, act: jax.Array) -> jax.Array:
        return self.objective.min_q(state.critic.params)(obs, act)

    def state_value(self, state: SACState, obs: jax.Array) -> jax.Array:
        """Q at the deterministic action tanh(μ(s)): the critic's value of the policy."""
        return self.q_value(state, obs, self.act(state, obs, jax.random.PRNGKey(0), False))

    def acting_view(self, state):
        return actor_critic_acting_view(state)

    def act(self, state: SACState, obs: jax.Array, key: jax.Array, explore: bool,
            context: ActContext | None = None) -> jax.Array:
        mean, _ = state.actor.apply_fn(state.actor.params, obs)
        if not explore:
            return jnp.tanh(mean)
        return self.explore(state, obs, key, context)[0]

    def explore(self, state: SACState, obs: jax.Array, key: jax.Array,
                context: ActContext | None = None) -> tuple[jax.Array, Metrics]:
        """a = tanh(u), u ~ N(μ, σ²); with Laplace, u ~ the moment-matched mixture of the M
        sub-policies' pre-squash Gaussians."""
        u_mean, log_std, phi = self._actor_parts(state.actor.params, obs)
        aleatoric = jnp.exp(2.0 * log_std)
        info = {"aleatoric_std": jnp.sqrt(aleatoric).mean()}
        var = aleatoric
        if self.config.laplace:
            u_mean, var = mixture_moments(self.laplace_means(state, u_mean, phi), aleatoric)
            info["epistemic_std"] = jnp.sqrt(jnp.maximum(var - aleatoric, 0.0)).mean()
        noise = jax.random.normal(key, u_mean.shape) if context is None else context.noise
        return jnp.tanh(u_mean + jnp.sqrt(var) * noise), info

    # ---------------------------------------------- "<method> w LA" (SPEC §6, shared module)
    def laplace_enabled(self) -> bool:
        return self.config.laplace

    def _actor_parts(self, params, obs):
        return self.actor_net.apply(params, obs, method=TanhGaussianActor.parts)

    def laplace_inputs(self, state: SACState, obs: jax.Array, act: jax.Array):
        _, log_std, phi = self._actor_parts(state.actor.params, obs)
        weights = self.objective.likelihood_weights(
            state.critic, state.value, state.target_critic_params, obs, act,
            self.policy(state.actor.params))
        return phi, weights, jnp.exp(-2.0 * log_std)
