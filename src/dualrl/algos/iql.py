"""IQL with a Gaussian actor (Kostrikov et al. 2022; CORL's offline-to-online recipe).

One update, top to bottom: value (expectile) -> Q (TD to V(s')) -> actor (advantage-weighted
likelihood) -> Polyak target. The same update runs offline and online; online, the loop just
feeds it batches that include fresh transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax
import jax
import jax.numpy as jnp
from flax.training.train_state import TrainState

from dualrl.actors.gaussian import GaussianActor, gaussian_log_prob
from dualrl.algos.laplace_acting import LaplaceActing
from dualrl.critics import iql as iql_loss
from dualrl.critics.networks import QEnsemble, ValueNet
from dualrl.nn.optim import actor_adam
from dualrl.o2o.agent import ActContext, Agent, Batch, Metrics, actor_critic_acting_view
from dualrl.uq.mixture import mixture_moments


@dataclass
class IQLConfig:
    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    # > 0: cosine-annealed actor lr reaching 0 after this many updates, rising again after
    # (CORL's IQL schedule; set to the offline steps to anneal to the switch)
    actor_cosine_steps: int = 0
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    beta: float = 3.0
    max_weight: float = 100.0
    state_dependent_std: bool = False
    layer_norm: bool = False  # LayerNorm in the Q and V networks (curbs over-estimation)
    # the task's range of returns (in the loop's reward units): Q and V regression targets
    # are clipped to it (None: unbounded on that side)
    value_min: float | None = None
    value_max: float | None = None
    # "IQL w LA": last-layer Laplace acting on the Gaussian actor (SPEC §6, --laplace)
    laplace: bool = False
    num_samples: int = 10
    refit_every: int = 5_000
    fit_samples: int = 100_000
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden (--iql.hidden) needs >= 1 positive width, got {self.hidden}")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"expectile (--iql.expectile) must be in (0, 1), got {self.expectile}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau (--iql.tau) must be in (0, 1], got {self.tau}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma (--iql.gamma) must be in (0, 1], got {self.gamma}")
        iql_loss.value_range(self.value_min, self.value_max, "--iql")


@flax.struct.dataclass
class IQLState:
    actor: TrainState
    critic: TrainState
    value: TrainState
    target_critic_params: flax.core.FrozenDict
    deltas: jax.Array  # (M, F+1, da) Laplace draws minus the MAP head (IQL w LA)
    prior_precision: jax.Array
    refits: jax.Array
    steps: jax.Array


class IQL(LaplaceActing, Agent):
    name = "iql"

    def __init__(self, config: IQLConfig):
        self.config = config
        self.actor_net: GaussianActor | None = None
        self.critic_net = QEnsemble(num_qs=2, hidden=config.hidden,
                                    layer_norm=config.layer_norm)
        self.value_net = ValueNet(hidden=config.hidden, layer_norm=config.layer_norm)
        self.value_range = iql_loss.value_range(config.value_min, config.value_max)

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> IQLState:
        cfg = self.config
        self.actor_net = GaussianActor(
            act_dim=act_dim, hidden=cfg.hidden, state_dependent_std=cfg.state_dependent_std
        )
        # One compiled call instead of hundreds of eager ops (seconds per process on CPU).
        return jax.jit(self._init, static_argnums=(1, 2))(key, obs_dim, act_dim)

    def _init(self, key: jax.Array, obs_dim: int, act_dim: int) -> IQLState:
        cfg = self.config
        k_actor, k_critic = jax.random.split(key)
        critic, value, target = iql_loss.init_critic_states(
            k_critic, self.critic_net, self.value_net, obs_dim, act_dim, cfg.critic_lr,
            cfg.value_lr,
        )
        return IQLState(
            actor=TrainState.create(
                apply_fn=self.actor_net.apply,
                params=self.actor_net.init(k_actor, jnp.zeros((1, obs_dim))),
                tx=actor_adam(cfg.actor_lr, cfg.actor_cosine_steps),
            ),
            critic=critic,
            value=value,
            target_critic_params=target,
            deltas=jnp.zeros((cfg.num_samples, cfg.hidden[-1] + 1, act_dim)),
            prior_precision=jnp.zeros(()),
            refits=jnp.zeros((), jnp.int32),
            steps=jnp.zeros((), jnp.int32),
        )

    def update(self, state: IQLState, batch: Batch, key: jax.Array) -> tuple[IQLState, Metrics]:
        cfg = self.config
        # 1–2. Critic: expectile V, TD Q, Polyak target (critics/iql.py).
        critic, value, target, target_q, v, critic_metrics = iql_loss.critic_step(
            self.critic_net, self.value_net, state.critic, state.value,
            state.target_critic_params, batch, cfg.expectile, cfg.gamma, cfg.tau,
            self.value_range,
        )

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

        new_state = state.replace(
            actor=actor, critic=critic, value=value, target_critic_params=target,
            steps=state.steps + 1,
        )
        metrics = {
            **critic_metrics,
            "actor_loss": pi_loss,
            "adv_weight_mean": weights.mean(),
            "actor_std": jnp.exp(log_std).mean(),
        }
        return new_state, metrics

    def state_value(self, state: IQLState, obs: jax.Array) -> jax.Array:
        return self.value_net.apply(state.value.params, obs)

    def q_value(self, state: IQLState, obs: jax.Array, act: jax.Array) -> jax.Array:
        return self.critic_net.apply(state.critic.params, obs, act).min(axis=0)

    def acting_view(self, state):
        return actor_critic_acting_view(state)

    def act(self, state: IQLState, obs: jax.Array, key: jax.Array, explore: bool,
            context: Any = None) -> jax.Array:
        mean, log_std = state.actor.apply_fn(state.actor.params, obs)
        if not explore:
            return mean
        return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)

    # ------------------------------------------------- IQL w LA (SPEC §6 on a Gaussian MLP)
    def laplace_enabled(self) -> bool:
        return self.config.laplace

    def _actor_parts(self, params, obs):
        phi = self.actor_net.apply(params, obs, method=GaussianActor.features)
        u = phi @ params["params"]["head"]["kernel"] + params["params"]["head"]["bias"]
        log_std = self.actor_net.apply(params, phi, method=GaussianActor.log_std_from_features)
        return u, log_std, phi

    def laplace_inputs(self, state: IQLState, obs: jax.Array, act: jax.Array):
        """Gauss–Newton of the advantage-weighted Gaussian NLL through tanh:
        1/σ² scaled by (dμ/du)² = (1 − tanh²u)²."""
        cfg = self.config
        u, log_std, phi = self._actor_parts(state.actor.params, obs)
        target_q = self.critic_net.apply(state.target_critic_params, obs, act).min(axis=0)
        v = self.value_net.apply(state.value.params, obs)
        weights = iql_loss.advantage_weights(target_q, v, cfg.beta, cfg.max_weight)
        return phi, weights, (1.0 - jnp.tanh(u) ** 2) ** 2 * jnp.exp(-2.0 * log_std)

    def explore(self, state: IQLState, obs: jax.Array, key: jax.Array,
                context: ActContext | None = None) -> tuple[jax.Array, Metrics]:
        if not self.config.laplace:
            return super().explore(state, obs, key, context)
        u, log_std, phi = self._actor_parts(state.actor.params, obs)
        aleatoric = jnp.exp(2.0 * log_std)
        mu, var = mixture_moments(jnp.tanh(self.laplace_means(state, u, phi)), aleatoric)
        noise = jax.random.normal(key, mu.shape) if context is None else context.noise
        action = mu + jnp.sqrt(var) * noise
        return action, {"epistemic_std": jnp.sqrt(jnp.maximum(var - aleatoric, 0.0)).mean(),
                        "aleatoric_std": jnp.sqrt(aleatoric).mean(),
                        "action_std": jnp.sqrt(var).mean()}
