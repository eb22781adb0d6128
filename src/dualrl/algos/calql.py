"""Cal-QL (Nakamoto et al. 2023; SPEC §7): SAC with a calibrated CQL critic.

One update, top to bottom: temperature α -> Q (SAC backup + α_cql · calibrated CQL gap, the
gap's policy samples bounded below by the data's Monte-Carlo return-to-go) -> Lagrange α'
(optional) -> actor (E[α log π(ã|s) − min Q(s, ã)]) -> Polyak target. The same update runs
offline and online; at the switch α_cql takes its online value, and the references' 50/50
mix of offline and online rows is the loop's `online_ratio` (0.5 unless the task's preset
sets the shared protocol's share). Defaults are CORL's `finetune/cal_ql.py` for locomotion;
the presets set AntMaze's and Adroit's (config.py).

`--calql.laplace` ("Cal-QL w LA"): the shared last-layer Laplace on the tanh-Gaussian's
mean head. The SAC loss is read as the likelihood of buffer actions weighted by exp(A/α)
(critics.sac.soft_advantage_weights); in pre-squash space that likelihood is exactly
Gaussian in u = φ̃W, so its Hessian in W is the Gauss–Newton matrix Σ w φ̃φ̃ᵀ / σ².
"""

from __future__ import annotations

from dataclasses import dataclass

import flax
import jax
import jax.numpy as jnp
from flax.training.train_state import TrainState

from dualrl.actors.tanh_gaussian import TanhGaussianActor, sample_tanh_gaussian
from dualrl.algos.laplace_acting import LaplaceActing
from dualrl.critics.calql import CalQLObjective
from dualrl.critics.networks import QEnsemble
from dualrl.critics.sac import SACTemperatures
from dualrl.data.buffer import Batch, MonteCarloReturns
from dualrl.nn.optim import actor_adam
from dualrl.o2o.agent import ActContext, Agent, Metrics, actor_critic_acting_view
from dualrl.uq.mixture import mixture_moments


@dataclass
class CalQLConfig:
    hidden: tuple[int, ...] = (256, 256)  # Q networks (CORL: 2 locomotion, 3 Adroit, 5 AntMaze)
    actor_hidden: tuple[int, ...] = (256, 256, 256)
    actor_lr: float = 3e-5  # also the temperature's lr (CORL); 1e-4 AntMaze / Adroit
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    cql_alpha: float = 10.0  # 5 AntMaze, 1 Adroit
    cql_alpha_online: float = 10.0
    n_actions: int = 10
    cql_temperature: float = 1.0
    lagrange: bool = False  # AntMaze: α' tuned to hold the gap at target_action_gap
    target_action_gap: float = 0.8
    max_target_backup: bool = False
    clip_diff_min: float | None = None  # -200 AntMaze / Adroit
    clip_diff_max: float | None = None
    calibrated: bool = True  # False: plain CQL
    sparse_reward: bool = False  # never-successful episodes get r_min / (1 − γ)
    # on top of the loop's reward transform (shared by all methods on a task): CORL's
    # AntMaze r·10 − 5 is scale 10, bias 5 on the loop's r − 1
    reward_scale: float = 1.0
    reward_bias: float = 0.0
    target_entropy: float | None = None  # None: −|A|
    orthogonal: bool = True
    layer_norm: bool = False
    # "Cal-QL w LA": last-layer Laplace acting on the actor (SPEC §6, --calql.laplace)
    laplace: bool = False
    max_weight: float = 100.0
    num_samples: int = 10
    refit_every: int = 5_000
    fit_samples: int = 100_000
    temperature: float = 1.0

    def __post_init__(self) -> None:
        for name in ("hidden", "actor_hidden"):
            widths = getattr(self, name)
            if not widths or min(widths) < 1:
                raise ValueError(f"{name} (--calql.{name.replace('_', '-')}) needs >= 1 "
                                 f"positive width, got {widths}")
        if not 0.0 < self.gamma < 1.0:
            raise ValueError(f"gamma (--calql.gamma) must be in (0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau (--calql.tau) must be in (0, 1], got {self.tau}")
        if self.n_actions < 1:
            raise ValueError(f"n_actions (--calql.n-actions) must be >= 1, got {self.n_actions}")
        if self.cql_temperature <= 0:
            raise ValueError("cql_temperature (--calql.cql-temperature) must be > 0, got "
                             f"{self.cql_temperature}")


@flax.struct.dataclass
class CalQLState:
    actor: TrainState
    critic: TrainState
    value: SACTemperatures  # the objective's scalars (the slot IQL's V network fills)
    target_critic_params: flax.core.FrozenDict
    deltas: jax.Array  # (M, F+1, da) Laplace draws minus the MAP head (Cal-QL w LA)
    prior_precision: jax.Array
    refits: jax.Array
    steps: jax.Array


def calql_objective(cfg: CalQLConfig, sample) -> CalQLObjective:
    """The Cal-QL critic of a config (shared with DUAL's `--dual.critic calql`)."""
    inf = float("inf")
    return CalQLObjective(
        critic_net=QEnsemble(num_qs=2, hidden=cfg.hidden, layer_norm=cfg.layer_norm,
                             orthogonal=cfg.orthogonal),
        sample=sample, critic_lr=cfg.critic_lr, alpha_lr=cfg.actor_lr, gamma=cfg.gamma,
        tau=cfg.tau, cql_alpha=cfg.cql_alpha, cql_alpha_online=cfg.cql_alpha_online,
        n_actions=cfg.n_actions, cql_temperature=cfg.cql_temperature, lagrange=cfg.lagrange,
        target_action_gap=cfg.target_action_gap, max_target_backup=cfg.max_target_backup,
        clip_diff_min=-inf if cfg.clip_diff_min is None else cfg.clip_diff_min,
        clip_diff_max=inf if cfg.clip_diff_max is None else cfg.clip_diff_max,
        calibrated=cfg.calibrated, target_entropy=cfg.target_entropy,
        reward_scale=cfg.reward_scale, reward_bias=cfg.reward_bias, max_weight=cfg.max_weight)


class CalQL(LaplaceActing, Agent):
    name = "calql"
    loop_defaults = {"online_ratio": 0.5}  # the references' mixing_ratio

    def __init__(self, config: CalQLConfig):
        self.config = config
        self.objective = calql_objective(config, sample_tanh_gaussian)
        self.actor_net: TanhGaussianActor | None = None

    def monte_carlo_returns(self) -> MonteCarloReturns:
        cfg = self.config
        return MonteCarloReturns(cfg.gamma, cfg.sparse_reward, cfg.reward_scale,
                                 cfg.reward_bias)

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> CalQLState:
        self.actor_net = TanhGaussianActor(act_dim=act_dim, hidden=self.config.actor_hidden,
                                           orthogonal=self.config.orthogonal)
        return jax.jit(self._init, static_argnums=(1, 2))(key, obs_dim, act_dim)

    def _init(self, key: jax.Array, obs_dim: int, act_dim: int) -> CalQLState:
        cfg = self.config
        k_actor, k_critic = jax.random.split(key)
        critic, temps, target = self.objective.init(k_critic, obs_dim, act_dim)
        return CalQLState(
            actor=TrainState.create(apply_fn=self.actor_net.apply,
                                    params=self.actor_net.init(k_actor, jnp.zeros((1, obs_dim))),
                                    tx=actor_adam(cfg.actor_lr)),
            critic=critic, value=temps, target_critic_params=target,
            deltas=jnp.zeros((cfg.num_samples, cfg.actor_hidden[-1] + 1, act_dim)),
            prior_precision=jnp.zeros(()), refits=jnp.zeros((), jnp.int32),
            steps=jnp.zeros((), jnp.int32))

    def policy(self, params):
        """The current policy's sampler (obs, key, n) -> (a, log π) for the critic update."""
        def draw(obs, key, num_samples):
            mean, log_std = self.actor_net.apply(params, obs)
            return sample_tanh_gaussian(key, mean, log_std, num_samples)

        return draw

    def update(self, state: CalQLState, batch: Batch, key: jax.Array,
               ) -> tuple[CalQLState, Metrics]:
        k_critic, k_actor = jax.random.split(key)
        # 1–3. Temperature, calibrated CQL critic, Lagrange α', target (critics/calql.py).
        critic, temps, target, aux, metrics = self.objective.update(
            state.critic, state.value, state.target_critic_params, batch,
            self.policy(state.actor.params), k_critic)

        # 4. Actor: E[α log π(ã|s) − min_h Q_h(s, ã)], ã reparameterised.
        def actor_loss_fn(params):
            mean, log_std = self.actor_net.apply(params, batch.observations)
            return self.objective.actor_loss(aux, batch, mean, log_std, k_actor), log_std

        (pi_loss, log_std), grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.actor.params)
        new = state.replace(actor=state.actor.apply_gradients(grads=grads), critic=critic,
                            value=temps, target_critic_params=target, steps=state.steps + 1)
        return new, {**metrics, "actor_loss": pi_loss, "actor_std": jnp.exp(log_std).mean()}

    def on_phase_start(self, state: CalQLState, phase: str, buffer, buffer_state, key):
        if phase == "online":  # α_cql takes its online value from here on
            state = state.replace(value=state.value.replace(online=jnp.ones((), bool)))
        return super().on_phase_start(state, phase, buffer, buffer_state, key)

    def q_value(self, state: CalQLState, obs: jax.Array, act: jax.Array) -> jax.Array:
        return self.objective.min_q(state.critic.params)(obs, act)

    def state_value(self, state: CalQLState, obs: jax.Array) -> jax.Array:
        """Q at the deterministic action tanh(μ(s)): the critic's value of the policy."""
        return self.q_value(state, obs, self.act(state, obs, jax.random.PRNGKey(0), False))

    def acting_view(self, state):
        return actor_critic_acting_view(state)

    def act(self, state: CalQLState, obs: jax.Array, key: jax.Array, explore: bool,
            context: ActContext | None = None) -> jax.Array:
        mean, log_std = state.actor.apply_fn(state.actor.params, obs)
        if not explore:
            return jnp.tanh(mean)
        return self.explore(state, obs, key, context)[0]

    def explore(self, state: CalQLState, obs: jax.Array, key: jax.Array,
                context: ActContext | None = None) -> tuple[jax.Array, Metrics]:
        """a = tanh(u), u ~ N(μ, σ²); with Laplace, u ~ the moment-matched mixture of the M
        sub-policies' pre-squash Gaussians."""
        u_mean, log_std, phi = self._actor_parts(state.actor.params, obs)
        aleatoric = jnp.exp(2.0 * log_std)
        if self.config.laplace:
            u_mean, var = mixture_moments(self.laplace_means(state, u_mean, phi), aleatoric)
        else:
            var = aleatoric
        noise = jax.random.normal(key, u_mean.shape) if context is None else context.noise
        info = {"aleatoric_std": jnp.sqrt(aleatoric).mean()}
        if self.config.laplace:
            info["epistemic_std"] = jnp.sqrt(jnp.maximum(var - aleatoric, 0.0)).mean()
        return jnp.tanh(u_mean + jnp.sqrt(var) * noise), info

    # ------------------------------------------------ Cal-QL w LA (SPEC §6, shared module)
    def laplace_enabled(self) -> bool:
        return self.config.laplace

    def _actor_parts(self, params, obs):
        return self.actor_net.apply(params, obs, method=TanhGaussianActor.parts)

    def laplace_inputs(self, state: CalQLState, obs: jax.Array, act: jax.Array):
        _, log_std, phi = self._actor_parts(state.actor.params, obs)
        weights = self.objective.likelihood_weights(
            state.critic, state.value, state.target_critic_params, obs, act,
            self.policy(state.actor.params))
        return phi, weights, jnp.exp(-2.0 * log_std)
