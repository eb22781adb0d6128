"""DUAL (SPEC §2–§8): diffusion planner -> 1-step student actor on a critic (IQL, Cal-QL or
SO2: `--dual.critic`) -> last-layer Laplace -> shift-aware ensemble acting.

Offline (the `on_phase_start("offline")` hook, each stage checkpointed): fit the trajectory
planner, distil it to a one-step student; the student becomes the actor. Then the shared loop
trains critic + actor. Online (the `on_phase_start("online")` hook and every `refit_every`
steps): fit the last-layer Laplace posterior and draw the M weight sets; act with Eq. 7–8.

The actor's mean is the a_0 slot of the student's output for z = 0 with s_0 inpainted:
μ(s) = c · (W_a φ(s) + b_a), c = −σ_1 for the v-parameterisation (x̂ = α z − σ v̂ at t = 1,
z = 0), so μ is linear in the head rows W_a: those rows get the Laplace posterior. Weight
samples are stored as deviations from the MAP at fit time and added to the CURRENT head when
acting, so the ensemble stays centred on the actor as it keeps training online.

On a SAC-family critic (Cal-QL, SO2) the actor loss is that critic's E[α log π(ã|s) −
Q(s, ã)] with ã = μ + σ_ψ ε reparameterised from the DUAL Gaussian, and the critic's policy
draws come from the same Gaussian. The Laplace posterior reads that loss as the likelihood of
buffer actions weighted by w = exp(A/α) (critics.sac.soft_advantage_weights): Gaussian and
linear in the head, so its Hessian is exactly the Gauss–Newton matrix Σ w φ̃φ̃ᵀ / σ_ψ² the
shared module builds (the GGN through Q's action-Jacobian was not chosen: ReLU critics are
piecewise linear in a, and their curvature in the head is zero almost everywhere).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.training.train_state import TrainState

from dualrl.actors.gaussian import LOG_STD_MAX, LOG_STD_MIN, sample_gaussian
from dualrl.actors.tanh_gaussian import sample_tanh_gaussian
from dualrl.algos.calql import CalQL, CalQLConfig, calql_monte_carlo_returns, calql_objective
from dualrl.algos.edis import AUGMENTS, EDISSettings
from dualrl.algos.laplace_acting import LaplaceActing
from dualrl.algos.so2 import SO2, SO2Config, so2_objective
from dualrl.config import SAC_ACTOR_FIELDS
from dualrl.critics import iql as iql_loss
from dualrl.critics.networks import QEnsemble, ValueNet
from dualrl.data.buffer import Batch, BufferState, MonteCarloReturns
from dualrl.diffusion.conditioning import inpaint
from dualrl.diffusion.parameterization import to_x_eps
from dualrl.diffusion.planner import PlannerConfig, TrajectoryPlanner
from dualrl.nn.denoisers import MLPDenoiser
from dualrl.nn.optim import actor_adam
from dualrl.o2o.agent import ActContext, Agent, Metrics, actor_critic_acting_view
from dualrl.uq.mixture import mixture_moments, shift_distance

UQ_MODES = ("laplace", "sampling", "la-elbo", "none")
# DUAL's SAC-family critics: the base method's agent class (its loop settings), config class
# (filled from DUALConfig's fields of the same names) and objective builder
SAC_CRITICS = {"calql": (CalQL, CalQLConfig, calql_objective),
               "so2": (SO2, SO2Config, so2_objective)}
CRITICS = ("iql", *SAC_CRITICS)


@dataclass
class DUALConfig(EDISSettings):
    # planner and distillation (SPEC §2–§4)
    horizon: int = 8
    planner_hidden: tuple[int, ...] = (256, 256, 256)
    teacher_steps: int = 16
    planner_steps: int = 20_000
    distill_steps_per_round: int = 3_000
    planner_lr: float = 3e-4
    # a directory shared by runs (e.g. a sweep's ablations): finished planner / student stages
    # are stored there under a digest of everything they depend on (planner and distillation
    # settings, offline data, PRNG key) and reused by any run with the same digest. Empty:
    # stages live in the run's own directory. Runs computing the SAME stage must not overlap.
    stage_cache: str = ""
    use_planner: bool = True  # False: "w/o planner" — action-only diffusion (horizon 1)
    distill: bool = True  # False: "w/o distillation" — the K-step teacher sampler is the actor
    # critic (SPEC §7) and the actor objective that goes with it: "iql" (AWR likelihood),
    # "calql" / "so2" (SAC-style E[α log π − Q]); the fields below apply where the critic has
    # them, and the task preset's calql / so2 groups apply to DUAL on that critic
    critic: str = "iql"
    hidden: tuple[int, ...] = (256, 256)
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    beta: float = 3.0
    max_weight: float = 100.0
    layer_norm: bool = False  # LayerNorm in the Q and V networks (as IQLConfig)
    value_min: float | None = None  # targets clipped to the return range (as IQLConfig)
    value_max: float | None = None
    # Cal-QL (--dual.critic calql; defaults and meaning as CalQLConfig)
    cql_alpha: float = 10.0
    cql_alpha_online: float = 10.0
    lagrange: bool = False
    target_action_gap: float = 0.8
    max_target_backup: bool = False
    clip_diff_min: float | None = None
    calibrated: bool = True
    sparse_reward: bool = False
    reward_scale: float = 1.0
    reward_bias: float = 0.0
    # SO2 (--dual.critic so2; as SO2Config)
    num_qs: int = 10
    noise_std: float = 0.3
    noise_clip: float = 0.6
    actor_every: int = 10
    backup_entropy: bool = True
    # SAC-family critics: the Gaussian's draws clipped to the action box [−1, 1] before they
    # reach Q (the base methods' draws are tanh-squashed; unbounded draws let the critic be
    # queried, and the actor pulled, outside the data's box). Tried on frozenlake-shift quick
    # (docs/results/critics.md): it does not help — the clipped draws make entropy free, σ_ψ
    # runs to its maximum (e²) and the runs still score ~0; off by default
    clip_draws: bool = False
    # SAC-family critics: the DUAL Gaussian read in pre-squash space, a = tanh(u),
    # u ~ N(μ, σ_ψ²), with the change-of-variables density in the entropy term — the base
    # methods' own tanh-Gaussian, so the critic is queried, and the actor pulled, only inside
    # the action box, and entropy stays bounded there. The Laplace posterior is over u's
    # head, which stays linear (as "Cal-QL w LA"); acting mixes in u, then squashes.
    # None: on for calql/so2 (docs/results/critics.md: unsquashed, DUAL on SO2 collapsed to
    # ≈ 1 on both hopper shifts; squashed it scores 11.0 / 9.6), off (and refused) for iql
    squash: bool | None = None
    # actor (SPEC §5)
    actor_lr: float = 3e-4
    actor_cosine_steps: int = 0  # > 0: CORL's cosine actor lr (see IQLConfig)
    transition_weight: float = 1.0
    freeze_transition: bool = False  # keep the offline transition model for the shift term
    # uncertainty and acting (SPEC §6)
    uq: str = "laplace"  # "laplace" | "sampling" (latent z sub-policies) | "la-elbo" | "none"
    epistemic: bool = True  # False: "w/o epistemic UQ" (σ_ψ only)
    num_samples: int = 10
    refit_every: int = 5_000
    fit_samples: int = 100_000
    temperature: float = 1.0
    shift_weight: float = 0.5
    # the optional augmentation step of Algorithm 1 (paper Fig. 3b): "edis" mixes EDIS's
    # energy-guided synthetic transitions into the online batches (algos/edis.py; its
    # settings are the EDISSettings fields above, e.g. --dual.synthetic-share)
    augment: str = "none"

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment (--dual.augment) must be one of {', '.join(AUGMENTS)}, "
                             f"got {self.augment}")
        if self.augment == "edis":
            self.check_augment("dual")
        if self.critic not in CRITICS:
            raise ValueError(f"critic (--dual.critic) must be one of {', '.join(CRITICS)}, "
                             f"got {self.critic}")
        iql_loss.value_range(self.value_min, self.value_max, "--dual")
        if self.uq not in UQ_MODES:
            raise ValueError(f"uq (--dual.uq) must be one of {', '.join(UQ_MODES)}, got {self.uq}")
        if self.teacher_steps < 2 or self.teacher_steps & (self.teacher_steps - 1):
            raise ValueError("teacher_steps must be a power of two >= 2")
        if self.squash is None:
            self.squash = self.critic != "iql"
        if self.squash and self.clip_draws:
            raise ValueError("clip_draws (--dual.clip-draws) is for unsquashed draws: pass "
                             "--dual.squash false with it")
        if (self.squash or self.clip_draws) and self.critic == "iql":
            raise ValueError("squash and clip_draws (--dual.squash, --dual.clip-draws) are for "
                             "the SAC-family critics (--dual.critic calql|so2)")
        if self.num_samples < 1 or self.refit_every < 1 or self.fit_samples < 2:
            raise ValueError("num_samples, refit_every >= 1 and fit_samples >= 2 required")


def dual_critic_config(config: DUALConfig) -> CalQLConfig | SO2Config:
    """The base method's config of DUAL's SAC-family critic, from DUAL's same-named fields
    (the actor's own settings — widths, lr, Laplace — are DUAL's and stay out)."""
    _, cls, _ = SAC_CRITICS[config.critic]
    shared = {f.name for f in dataclasses.fields(cls)} & {f.name for f in
                                                          dataclasses.fields(config)}
    return cls(**{name: getattr(config, name) for name in shared - SAC_ACTOR_FIELDS})


class DUALActor(nn.Module):
    """The distilled student (features + linear head) plus a state-dependent log-std head."""

    out_dim: int
    act_dim: int
    hidden: tuple[int, ...]

    def setup(self) -> None:
        self.student = MLPDenoiser(out_dim=self.out_dim, hidden=self.hidden)
        self.log_std_head = nn.Dense(self.act_dim)

    def features(self, z: jax.Array, t: jax.Array) -> jax.Array:
        return self.student.features(z, t)

    def head(self, phi: jax.Array) -> jax.Array:
        return self.student.head(phi)

    def log_std(self, phi: jax.Array) -> jax.Array:
        return jnp.clip(self.log_std_head(phi), LOG_STD_MIN, LOG_STD_MAX)

    def prefix_features(self, prefix: jax.Array, t: jax.Array) -> jax.Array:
        return self.student.prefix_features(prefix, t)

    def head_columns(self, phi: jax.Array, start: int, stop: int) -> jax.Array:
        return self.student.head_columns(phi, start, stop)

    def __call__(self, z: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        phi = self.features(z, t)
        return self.head(phi), self.log_std(phi)


@flax.struct.dataclass
class DUALState:
    actor: TrainState
    critic: TrainState
    value: Any  # IQL's V network, or a SAC-family critic's SACTemperatures
    target_critic_params: Any
    frozen_params: Any  # with freeze_transition: the offline actor, used for ŝ; else {}
    deltas: jax.Array  # (M, F+1, da) posterior weight draws minus the MAP at fit time
    latents: jax.Array  # (M, D) latent draws for the "w sampling" ablation
    prior_precision: jax.Array  # λ chosen at the last refit
    refits: jax.Array
    steps: jax.Array


class DUAL(LaplaceActing, Agent):
    name = "dual"
    # the distilled student's calls from z = 0 skip the segment's zero columns (see
    # `_student_from_zero`); False: the dense inpainted pass, kept as the reference that the
    # tests and `dualrl bench throughput` compare against
    prefix_pass = True

    def __init__(self, config: DUALConfig):
        self.config = config
        if config.critic == "iql":
            self.objective = iql_loss.IQLObjective(
                critic_net=QEnsemble(num_qs=2, hidden=config.hidden,
                                     layer_norm=config.layer_norm),
                value_net=ValueNet(hidden=config.hidden, layer_norm=config.layer_norm),
                critic_lr=config.critic_lr,
                value_lr=config.value_lr, expectile=config.expectile, gamma=config.gamma,
                tau=config.tau, beta=config.beta, max_weight=config.max_weight,
                value_range=iql_loss.value_range(config.value_min, config.value_max))
        else:  # the base method's objective on the DUAL Gaussian
            _, _, build = SAC_CRITICS[config.critic]
            self.objective = build(dual_critic_config(config), self._draw)
        self.stage_dir: Path | None = None  # set by the loop: where stage checkpoints go
        self.log = print

    @classmethod
    def loop_defaults_for(cls, config: DUALConfig) -> dict[str, Any]:
        """The critic's method's loop settings (SO2's 10 updates per step, ...)."""
        if config.critic == "iql":
            return {}
        base, _, _ = SAC_CRITICS[config.critic]
        return base.loop_defaults_for(dual_critic_config(config))

    def monte_carlo_returns(self) -> MonteCarloReturns | None:
        if self.config.critic != "calql":
            return None
        return calql_monte_carlo_returns(dual_critic_config(self.config))

    # ------------------------------------------------------------------ set-up
    def planner_config(self) -> PlannerConfig:
        cfg = self.config
        return PlannerConfig(
            horizon=cfg.horizon if cfg.use_planner else 1, hidden=cfg.planner_hidden,
            teacher_steps=cfg.teacher_steps, train_steps=cfg.planner_steps, lr=cfg.planner_lr,
            transition_condition_prob=0.5 if cfg.use_planner else 0.0,
        )

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> DUALState:
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.planner = TrajectoryPlanner(self.planner_config(), obs_dim, act_dim)
        lay = self.planner.layout
        self.actor_net = DUALActor(out_dim=lay.dim, act_dim=act_dim,
                                   hidden=self.config.planner_hidden)
        # the actor samples on the grid t_k = 1 − k/K: K = 1 for the distilled student, K =
        # teacher_steps without distillation (deterministic DDIM from z = 0)
        self.actor_steps = 1 if self.config.distill else self.config.teacher_steps
        grid = np.linspace(1.0, 0.0, self.actor_steps + 1)
        alpha, sigma = self.planner.schedule.alpha_sigma(jnp.asarray(grid, jnp.float32))
        self.grid = [(float(t), float(a), float(s)) for t, a, s in
                     zip(grid, alpha, sigma, strict=True)]
        _, alpha_last, sigma_last = self.grid[self.actor_steps - 1]
        kind = self.planner.config.parameterization
        # μ = const + coef · (W_a φ + b_a) in the a_0 slots at the LAST network call (the only
        # call when distilled, with z = 0 and const = 0; see the module docstring)
        self.head_coef = {"v": -sigma_last, "x0": 1.0, "eps": -sigma_last / alpha_last}[kind]
        return jax.jit(self._init, static_argnums=(1, 2))(key, obs_dim, act_dim)

    def _init(self, key: jax.Array, obs_dim: int, act_dim: int) -> DUALState:
        cfg = self.config
        k_actor, k_critic = jax.random.split(key)
        lay = self.planner.layout
        actor_params = self.actor_net.init(k_actor, jnp.zeros((1, lay.dim)), jnp.ones((1,)))
        critic, value, target = self.objective.init(k_critic, obs_dim, act_dim)
        feat = cfg.planner_hidden[-1]
        return DUALState(
            actor=TrainState.create(apply_fn=self.actor_net.apply, params=actor_params,
                                    tx=actor_adam(cfg.actor_lr, cfg.actor_cosine_steps)),
            critic=critic, value=value, target_critic_params=target,
            frozen_params=self._frozen_copy(actor_params),
            deltas=jnp.zeros((cfg.num_samples, feat + 1, act_dim)),
            latents=jnp.zeros((cfg.num_samples, lay.dim)),
            prior_precision=jnp.zeros(()), refits=jnp.zeros((), jnp.int32),
            steps=jnp.zeros((), jnp.int32),
        )

    # ------------------------------------------------------------ the student
    def _x_hat(self, params, z: jax.Array, s: jax.Array, a: jax.Array | None = None):
        """One student call at t = 1: (x̂ with the condition inpainted, features φ)."""
        lay = self.planner.layout
        return self._x_hat_masked(params, z, lay.slot_mask(1, 0 if a is None else 1),
                                  lay.condition_values(s, a))

    def _x_hat_masked(self, params, z: jax.Array, mask: jax.Array, values: jax.Array):
        """The actor's sampler from z with the condition inpainted: (x̂, features φ of the
        last network call). One call at t = 1 for the student; K DDIM steps otherwise."""
        kind = self.planner.config.parameterization

        def call(z, k):
            t, alpha, sigma = self.grid[k]
            inp = inpaint(z, mask, values)
            phi = self.actor_net.apply(params, inp, jnp.full((z.shape[0],), t),
                                       method=DUALActor.features)
            out = self.actor_net.apply(params, phi, method=DUALActor.head)
            x, eps = to_x_eps(kind, out, inp, alpha, sigma)
            return inpaint(x, mask, values), eps, phi

        for k in range(self.actor_steps - 1):  # K is small and static: unrolled
            x, eps, _ = call(z, k)
            _, alpha_next, sigma_next = self.grid[k + 1]
            z = alpha_next * x + sigma_next * eps
        if self.actor_steps > 1:
            # the earlier calls are the last call's input, not differentiated through
            # (truncated backprop through the sampler: ~8x cheaper updates at K = 16)
            z = jax.lax.stop_gradient(z)
        x, _, phi = call(z, self.actor_steps - 1)
        return x, phi

    def _student_from_zero(self, params, condition: jax.Array, start: int, stop: int):
        """The distilled student's one call at t = 1 from z = 0 with `condition` (B, c) —
        s_0, or [s_0, a_0] — inpainted in the segment's first c columns: (x̂ in columns
        [start, stop), which must lie outside the condition, and φ). The same numbers as
        `_x_hat` without multiplying the zeros of the rest of the segment (the actor update
        ran ~3x slower through the dense pass on Frozen-Lake's 544-wide segment)."""
        t, alpha, sigma = self.grid[0]
        phi = self.actor_net.apply(params, condition, jnp.full((condition.shape[0],), t),
                                   method=DUALActor.prefix_features)
        out = self.actor_net.apply(params, phi, start, stop, method=DUALActor.head_columns)
        x, _ = to_x_eps(self.planner.config.parameterization, out, jnp.zeros_like(out),
                        alpha, sigma)
        return x, phi

    @property
    def _from_zero_in_one_call(self) -> bool:
        """Whether the policy and transition passes take `_student_from_zero`'s path."""
        return self.prefix_pass and self.actor_steps == 1

    def policy_parts(self, params, s: jax.Array):
        """μ(s) (z = 0), log σ_ψ(s) and φ(s) from ONE network pass."""
        lay = self.planner.layout
        if self._from_zero_in_one_call:
            mean, phi = self._student_from_zero(params, s, lay.obs_dim, lay.width)
        else:
            x, phi = self._x_hat(params, jnp.zeros((s.shape[0], lay.dim)), s)
            mean = lay.action_slot(x)
        log_std = self.actor_net.apply(params, phi, method=DUALActor.log_std)
        return mean, log_std, phi

    def predict_next(self, params, s: jax.Array, a: jax.Array) -> jax.Array:
        """ŝ_1 = mean of P̂(· | s, a): the s_1 slot for z = 0 with s_0, a_0 inpainted."""
        lay = self.planner.layout
        if self._from_zero_in_one_call:
            return self._student_from_zero(params, jnp.concatenate([s, a], -1), lay.width,
                                           lay.width + lay.obs_dim)[0]
        x, _ = self._x_hat(params, jnp.zeros((s.shape[0], lay.dim)), s, a)
        return lay.next_state_slot(x)

    def policy_and_next(self, params, s: jax.Array, a: jax.Array):
        """policy_parts(s) and predict_next(s, a) from ONE network pass over 2B rows (one
        larger matmul per layer instead of two: what the actor update needs)."""
        lay, b = self.planner.layout, s.shape[0]
        if self._from_zero_in_one_call:
            # columns [a_0 slot | s_1 slot] of the [s, 0] and [s, a] rows
            condition = jnp.concatenate([jnp.concatenate([s, jnp.zeros_like(a)], -1),
                                         jnp.concatenate([s, a], -1)])
            x, phi = self._student_from_zero(params, condition, lay.obs_dim,
                                             lay.width + lay.obs_dim)
            log_std = self.actor_net.apply(params, phi[:b], method=DUALActor.log_std)
            return x[:b, : lay.act_dim], log_std, phi[:b], x[b:, lay.act_dim:]
        mask = jnp.concatenate([jnp.broadcast_to(lay.slot_mask(1, 0), (b, lay.dim)),
                                jnp.broadcast_to(lay.slot_mask(1, 1), (b, lay.dim))])
        values = jnp.concatenate([lay.condition_values(s), lay.condition_values(s, a)])
        x, phi = self._x_hat_masked(params, jnp.zeros((2 * b, lay.dim)), mask, values)
        log_std = self.actor_net.apply(params, phi[:b], method=DUALActor.log_std)
        return lay.action_slot(x[:b]), log_std, phi[:b], lay.next_state_slot(x[b:])

    def _draw(self, key, mean, log_std, num_samples=None):
        """Reparameterised draws of the DUAL Gaussian and their log densities: tanh-squashed
        with `squash` (change-of-variables density), clipped to the action box with
        `clip_draws` (the density stays the Gaussian's)."""
        if self.config.squash:
            return sample_tanh_gaussian(key, mean, log_std, num_samples)
        action, log_pi = sample_gaussian(key, mean, log_std, num_samples)
        return (jnp.clip(action, -1.0, 1.0) if self.config.clip_draws else action), log_pi

    def _squashed(self, u: jax.Array) -> jax.Array:
        """The action of a pre-squash value (identity without `squash`)."""
        return jnp.tanh(u) if self.config.squash else u

    def policy(self, params):
        """The DUAL Gaussian's sampler (obs, key, n) -> (a, log π) for a SAC-family critic."""
        def draw(obs, key, num_samples):
            mean, log_std, _ = self.policy_parts(params, obs)
            return self._draw(key, mean, log_std, num_samples)

        return draw

    def head_weights(self, params) -> jax.Array:
        """W_eff (F+1, da): μ = φ̃ W_eff, the linear model the Laplace fit is about."""
        out = params["params"]["student"]["output"]
        sl = slice(self.obs_dim, self.obs_dim + self.act_dim)
        w = jnp.concatenate([out["kernel"][:, sl], out["bias"][None, sl]], axis=0)
        return self.head_coef * w

    # ----------------------------------------------------------------- update
    def update(self, state: DUALState, batch: Batch, key: jax.Array) -> tuple[DUALState, Metrics]:
        cfg = self.config
        k_critic, k_actor = jax.random.split(key)
        critic, value, target, aux, critic_metrics = self.objective.update(
            state.critic, state.value, state.target_critic_params, batch,
            self.policy(state.actor.params), k_critic)
        use_transition = cfg.use_planner and cfg.transition_weight > 0

        def actor_loss_fn(params):
            if use_transition:
                mean, log_std, _, s1 = self.policy_and_next(params, batch.observations,
                                                            batch.actions)
                trans = jnp.mean((s1 - batch.next_observations) ** 2)
            else:
                mean, log_std, _ = self.policy_parts(params, batch.observations)
                trans = jnp.zeros(())
            loss = self.objective.actor_loss(aux, batch, mean, log_std, k_actor)
            return loss + cfg.transition_weight * trans, (loss, trans, log_std)

        def step_actor(actor):
            (_, (loss, trans, log_std)), grads = jax.value_and_grad(
                actor_loss_fn, has_aux=True)(actor.params)
            return actor.apply_gradients(grads=grads), (loss, trans, jnp.exp(log_std).mean())

        # every critic step, or every `actor_every`-th online on the SO2 critic
        due = state.steps % self.objective.actor_period(state.value) == 0
        actor, (loss, trans, std) = jax.lax.cond(
            due, step_actor, lambda actor: (actor, (jnp.zeros(()),) * 3), state.actor)
        new = state.replace(actor=actor, critic=critic, value=value, target_critic_params=target,
                            steps=state.steps + 1)
        return new, {**critic_metrics, "actor_loss": loss, "transition_loss": trans,
                     "actor_std": std, "actor_updates": due.astype(jnp.float32)}

    # ----------------------------------------------------------------- acting
    def acting_view(self, state):
        return actor_critic_acting_view(state)

    def act(self, state: DUALState, obs: jax.Array, key: jax.Array, explore: bool,
            context: ActContext | None = None) -> jax.Array:
        if not explore:
            return self.deterministic_action(state, obs)
        return self.explore(state, obs, key, context)[0]

    def deterministic_action(self, state: DUALState, obs: jax.Array) -> jax.Array:
        """The evaluation action: μ(s) of W^MAP (squashed with `squash`)."""
        return self._squashed(self.policy_parts(state.actor.params, obs)[0])

    def explore(self, state: DUALState, obs: jax.Array, key: jax.Array,
                context: ActContext | None = None) -> tuple[jax.Array, Metrics]:
        """Eq. 7–8: mixture of the M sub-policies, widened by λ_shift · d(ŝ_t, s_t)."""
        cfg = self.config
        params = state.actor.params
        mean, log_std, phi = self.policy_parts(params, obs)
        aleatoric = jnp.exp(2.0 * log_std)
        if cfg.epistemic and cfg.uq in ("laplace", "la-elbo"):
            means = self.laplace_means(state, mean, phi)
        elif cfg.epistemic and cfg.uq == "sampling":
            def sub_policy(z):
                x, _ = self._x_hat(params, jnp.broadcast_to(z, (obs.shape[0], z.shape[-1])), obs)
                return self.planner.layout.action_slot(x)

            means = jax.vmap(sub_policy)(state.latents)
        else:
            means = mean[None]
        mu, var = mixture_moments(means, aleatoric)
        shift = jnp.zeros(obs.shape[0])
        if context is not None and self.shift_aware():
            # ŝ_t was predicted from (s_{t−1}, a_{t−1}) when that transition was stored
            shift = jnp.where(context.first, 0.0, shift_distance(context.predicted_obs, obs))
        total_var = var + cfg.shift_weight * shift[:, None]
        noise = jax.random.normal(key, mu.shape) if context is None else context.noise
        action = self._squashed(mu + jnp.sqrt(total_var) * noise)
        # the same draw without the shift term, and with neither the shift nor the epistemic
        # part: how often each term changes the executed move (argmax, for one-hot actions)
        no_shift = self._squashed(mu + jnp.sqrt(var) * noise)
        aleatoric_only = self._squashed(mean + jnp.sqrt(aleatoric) * noise)
        move = lambda a: jnp.argmax(a, axis=-1)  # noqa: E731
        info = {
            "epistemic_std": jnp.sqrt(jnp.maximum(var - aleatoric, 0.0)).mean(),
            "aleatoric_std": jnp.sqrt(aleatoric).mean(),
            "shift_distance": shift.mean(),
            "action_std": jnp.sqrt(total_var).mean(),
            "epistemic_changed": (move(no_shift) != move(aleatoric_only)).mean(),
            "shift_changed": (move(action) != move(no_shift)).mean(),
        }
        return action, info

    def state_value(self, state: DUALState, obs: jax.Array) -> jax.Array:
        if self.config.critic == "iql":
            return self.objective.value_net.apply(state.value.params, obs)
        # a SAC-family critic has no V network: Q at the deterministic action
        return self.q_value(state, obs, self.deterministic_action(state, obs))

    def q_value(self, state: DUALState, obs: jax.Array, act: jax.Array) -> jax.Array:
        return self.objective.critic_net.apply(state.critic.params, obs, act).min(axis=0)

    def shift_aware(self) -> bool:
        return self.config.use_planner and self.config.shift_weight > 0

    def predict_next_obs(self, state: DUALState, obs: jax.Array,
                         action: jax.Array) -> jax.Array | None:
        """ŝ_{t+1} from the transition rows (the offline copy with --freeze-transition)."""
        if not self.shift_aware():
            return None
        params = state.frozen_params if self.config.freeze_transition else state.actor.params
        return self.predict_next(params, obs, action)

    # ------------------------------------------------------------------ hooks
    def on_phase_start(self, state: DUALState, phase: str, buffer: Any,
                       buffer_state: BufferState, key: jax.Array) -> DUALState:
        if phase == "offline":
            return self._pretrain(state, buffer_state, key)
        state = state.replace(frozen_params=self._frozen_copy(state.actor.params),
                              value=self.objective.start_online(state.value))
        return super().on_phase_start(state, phase, buffer, buffer_state, key)

    def _frozen_copy(self, params):
        """A copy of the actor for the frozen transition model ({} when not frozen, so no
        buffer is held twice)."""
        return jax.tree.map(jnp.copy, params) if self.config.freeze_transition else {}

    def laplace_enabled(self) -> bool:
        return self.config.epistemic and self.config.uq != "none"

    def refit(self, state: DUALState, buffer_state: BufferState, key: jax.Array) -> DUALState:
        if self.laplace_enabled() and self.config.uq == "sampling":  # latent sub-policies
            latents = jax.random.normal(jax.random.fold_in(key, 1), state.latents.shape)
            return state.replace(latents=latents, refits=state.refits + 1)
        return super().refit(state, buffer_state, key)

    def laplace_inputs(self, state: DUALState, obs: jax.Array, act: jax.Array):
        """φ, weights and 1/σ² of the loss the posterior is about (SPEC §6, Remark 3.3)."""
        cfg = self.config
        _, log_std, phi = self.policy_parts(state.actor.params, obs)
        if cfg.uq == "la-elbo":  # unweighted squared-error (diffusion) loss in the raw head
            n = obs.shape[0]
            return phi, jnp.ones(n), jnp.full((n, self.act_dim), 1.0 / self.head_coef**2)
        # the actor loss of Eq. 5: the objective's likelihood weights, σ_ψ(s)²
        weights = self.objective.likelihood_weights(
            state.critic, state.value, state.target_critic_params, obs, act,
            self.policy(state.actor.params))
        return phi, weights, jnp.exp(-2.0 * log_std)

    # -------------------------------------------------------------- pretraining
    def _pretrain(self, state: DUALState, buffer_state: BufferState, key: jax.Array) -> DUALState:
        """Planner fit then progressive distillation; each stage checkpointed in stage_dir."""
        from dualrl.diffusion.distill import DistillConfig, progressive_distill
        from dualrl.o2o.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

        cfg, planner = self.config, self.planner
        inputs = hashlib.sha256()  # what the stages depend on, accumulated stage by stage
        if cfg.stage_cache:  # only a shared cache needs the digest: hash the data just then
            n = int(buffer_state.size)
            for part in (buffer_state.observations, buffer_state.actions, buffer_state.rewards,
                         buffer_state.next_observations, buffer_state.dones,
                         buffer_state.episode_ids, jax.random.key_data(key)):
                inputs.update(np.ascontiguousarray(jax.device_get(part[:n] if part.ndim
                                                                  else part)))

        def stage(name: str, settings: str, compute, template):
            inputs.update(f"{name}:{settings}".encode())
            if not cfg.stage_cache:
                path = None if self.stage_dir is None else self.stage_dir / name
                return load_or_compute(path, name, settings, compute, template)
            path = Path(cfg.stage_cache) / f"{name}-{inputs.hexdigest()[:20]}"
            path.parent.mkdir(parents=True, exist_ok=True)
            # one process computes a shared stage; others wait for it, then load it (the
            # lock is released by the OS if its holder dies)
            with open(path.parent / f".{path.name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                return load_or_compute(path, name, settings, compute, template)

        def load_or_compute(path, name, settings, compute, template):
            if path is not None and latest_checkpoint(path) is not None:
                restored, _, _ = load_checkpoint(latest_checkpoint(path), template)
                self.log(f"dual: reusing the finished stage '{name}' from {path}")
                return jax.device_put(restored)
            result = compute()
            if path is not None:
                save_checkpoint(path, name, result, {}, {"stage": name, "settings": settings})
            return result

        def fit():
            st, loss = planner.fit(planner.init(jax.random.fold_in(key, 1)), buffer_state, key,
                                   cfg.planner_steps)
            self.log(f"dual: planner trained ({cfg.planner_steps} steps, loss {loss:.4f})")
            return st

        teacher = stage("planner", f"{planner.config}|{cfg.planner_steps}", fit,
                        planner.init(jax.random.PRNGKey(0)))

        def distill():
            student, reports = progressive_distill(
                planner, teacher, buffer_state, distill_config,
                jax.random.fold_in(key, 2), log=lambda r: self.log(f"dual: distill {r}"))
            return student

        distill_config = DistillConfig(cfg.distill_steps_per_round)
        student = stage("student", str(distill_config), distill, teacher) if cfg.distill \
            else teacher
        params = flax.core.unfreeze(state.actor.params)
        params["params"]["student"] = student.ema_params["params"]
        actor = TrainState.create(apply_fn=self.actor_net.apply, params=params,
                                  tx=actor_adam(cfg.actor_lr, cfg.actor_cosine_steps))
        return state.replace(actor=actor, frozen_params=self._frozen_copy(params))
