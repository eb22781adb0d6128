"""Diffuser (Janner et al. 2022) as the paper extends it to O2O (SPEC §10, paper App. B.1),
and D-Diffuser (`--distill`).

The planner is DUAL's trajectory planner (`diffusion/planner.py`: segments of H steps, s_0
inpainted, the same backbones — the MLP, or `--diffuser.backbone unet` for Diffuser's
temporal U-Net), sampled by K = 20 ancestral (DDPM) steps with value guidance
(`diffusion.samplers.Guidance`): before each step, 2 gradient steps on the noisy plan
z ← z + 0.1 · var_k · ∇_z J(z, t_k), none on the last 2 steps (Diffuser's t_stopgrad),
var_k the step's posterior variance (Diffuser's `scale_grad_by_std`). 64 candidate plans per
state; the first action of the plan with the highest J is executed (the policy extraction of
Eq. 4: the a_0 slot).

The guide J(τ^k, k) is a separate network over noisy plans (an MLP with the time embedding),
regressed on the plans' returns. Diffuser's own target is the Monte-Carlo return-to-go of the
segment's first state, which does not exist for an online episode that has not ended; here
the return of the segment is bootstrapped at its end by an IQL state value V (expectile
regression, trained beside it on the same batches, `critics/iql.py`):
    G(τ) = Σ_{h<n} γ^h r_h + γ^n (1 − d_{n−1}) V(s'_{n−1}),   n = real steps of the segment,
offline and online alike — the same target the segment's Monte-Carlo return estimates.

One update, top to bottom (the same update offline and online: "pre-trained on the offline
dataset and fine-tuned with the replay buffer"): the IQL critic (V, Q, Polyak); the planner's
diffusion loss on the segments that start at the batch's rows (`Agent.segment_horizon`: the
loop hands them over, so the planner sees the same offline/online mix as the critic); J on
those segments, noised at a random level, toward G. The planner's EMA weights plan.

Online exploration is the planner's own stochasticity (ancestral sampling, 64 candidates)
plus the loop's ε-uniform moves where a task's preset sets them; evaluation plans the same way.

D-Diffuser (`--distill`; K = 16, the nearest power of two): at the online switch the planner
is progressively distilled to one DDIM step (algos/distilled.py, as D-Diff-QL) and the student
plans; the teacher keeps learning and the student is distilled again every `redistill_every`
online steps. Guidance as the one-step sampler allows: its single step is the LAST step of the
chain, where Diffuser applies no gradient guidance, so the student's 64 candidate plans are
guided by selection only — ranked by J at t = 0, the best one's first action executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from dualrl.algos.distilled import DistilledStudent
from dualrl.config import check_agent_fields
from dualrl.critics import iql as iql_loss
from dualrl.critics.networks import QEnsemble, ValueNet
from dualrl.data.buffer import Batch, Segments
from dualrl.diffusion.conditioning import inpaint
from dualrl.diffusion.planner import PlannerConfig, PlannerState, TrajectoryPlanner
from dualrl.diffusion.samplers import Guidance, ddpm_sample
from dualrl.nn.denoisers import MLPDenoiser
from dualrl.o2o.agent import ActContext, Agent, Metrics

BACKBONES = ("mlp", "unet")


@dataclass
class DiffuserConfig:
    flag: ClassVar[str] = "diffuser"
    # the planner (SPEC §2; horizon per family from the presets: DUAL's)
    horizon: int = 8
    backbone: str = "mlp"  # "mlp" (CPU default) or "unet" (Diffuser's temporal U-Net)
    planner_hidden: tuple[int, ...] = (256, 256, 256)
    unet_dim: int = 32
    steps: int = 20  # K, ancestral sampling steps
    planner_lr: float = 3e-4
    ema_decay: float = 0.995
    # the guide J(τ^k, k)
    returns_hidden: tuple[int, ...] = (256, 256)
    returns_lr: float = 3e-4
    # the IQL value that bootstraps the returns past the segment's end
    hidden: tuple[int, ...] = (256, 256)
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    value_min: float | None = None  # return targets clipped to the task's range
    value_max: float | None = None
    # guided planning (Diffuser's defaults)
    candidates: int = 64
    guide_scale: float = 0.1
    guide_steps: int = 2
    guide_stop: int = 2  # no guidance on the last `guide_stop` denoising steps
    guide_by_variance: bool = True
    # D-Diffuser (--distill): see algos/distilled.py
    distill: bool = False
    distill_steps_per_round: int = 2_000
    redistill_every: int = 5_000

    def __post_init__(self) -> None:
        check_agent_fields(self, self.flag, ("horizon", "steps", "candidates", "unet_dim",
                                             "redistill_every", "distill_steps_per_round"),
                           widths=("hidden", "planner_hidden", "returns_hidden"))
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone '{self.backbone}' (--diffuser.backbone); "
                             f"valid: {', '.join(BACKBONES)}")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"expectile (--diffuser.expectile) must be in (0, 1), "
                             f"got {self.expectile}")
        if self.guide_steps < 0 or self.guide_stop < 0:
            raise ValueError("guide steps (--diffuser.guide-steps, --diffuser.guide-stop) "
                             "must be >= 0")
        if self.distill and (self.steps < 2 or self.steps & (self.steps - 1)):
            raise ValueError(f"--distill halves the sampling steps down to 1: steps "
                             f"(--diffuser.steps) must be a power of two >= 2, got "
                             f"{self.steps} (e.g. --diffuser.steps 16)")


@flax.struct.dataclass
class DiffuserState:
    planner: PlannerState  # the trajectory model; its EMA weights plan
    returns: TrainState  # the guide J(τ^k, k)
    critic: TrainState  # IQL Q (for V's expectile target)
    value: TrainState  # IQL V: the returns' bootstrap
    target_critic_params: Any
    # D-Diffuser's one-step student (None without --distill; see algos/distilled.py)
    student_params: Any = None
    distillations: jax.Array | None = None
    distill_rel_mse: jax.Array | None = None


class Diffuser(DistilledStudent, Agent):
    name = "diffuser"

    def __init__(self, config: DiffuserConfig):
        self.config = config
        self.critic_net = QEnsemble(num_qs=2, hidden=config.hidden)
        self.value_net = ValueNet(hidden=config.hidden)
        self.value_range = iql_loss.value_range(config.value_min, config.value_max)
        self.planner: TrajectoryPlanner | None = None
        self.returns_net: MLPDenoiser | None = None
        self.obs_dim = self.act_dim = 0

    def planner_config(self) -> PlannerConfig:
        cfg = self.config
        # only s_0 is ever a condition here (no transition queries): every example trains
        # the plan, none the a_0-conditioned transition
        return PlannerConfig(horizon=cfg.horizon, backbone=cfg.backbone,
                             hidden=cfg.planner_hidden, unet_dim=cfg.unet_dim,
                             teacher_steps=cfg.steps, sampler="ddpm", lr=cfg.planner_lr,
                             ema_decay=cfg.ema_decay, transition_condition_prob=0.0)

    def segment_horizon(self) -> int:
        return self.config.horizon

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> DiffuserState:
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.planner = TrajectoryPlanner(self.planner_config(), obs_dim, act_dim)
        self.returns_net = MLPDenoiser(out_dim=1, hidden=self.config.returns_hidden)
        return jax.jit(self._init)(key)

    def _init(self, key: jax.Array) -> DiffuserState:
        cfg = self.config
        k_plan, k_ret, k_critic = jax.random.split(key, 3)
        planner = self.planner.init(k_plan)
        z = jnp.zeros((1, self.planner.layout.dim))
        returns = TrainState.create(apply_fn=self.returns_net.apply,
                                    params=self.returns_net.init(k_ret, z, jnp.zeros((1,))),
                                    tx=optax.adam(cfg.returns_lr))
        critic, value, target = iql_loss.init_critic_states(
            k_critic, self.critic_net, self.value_net, self.obs_dim, self.act_dim,
            cfg.critic_lr, cfg.value_lr)
        return DiffuserState(planner=planner, returns=returns, critic=critic, value=value,
                             target_critic_params=target,
                             **self.student_initial_fields(planner.ema_params))

    def distillation_teacher(self, state: DiffuserState):
        return state.planner.ema_params

    # ------------------------------------------------------------------ the guide
    def plan_value(self, returns_params, z: jax.Array, t: jax.Array) -> jax.Array:
        """J(τ^k, k): (B,) returns predicted for noisy plans z (B, D) at times t (B,)."""
        return self.returns_net.apply(returns_params, z, t)[:, 0]

    def segment_returns(self, value_params, seg: Segments) -> jax.Array:
        """G = Σ_{h<n} γ^h r_h + γ^n (1 − d) V(s') at the segment's last real step (its
        padding repeats that step, so the last slot holds its s' and terminal flag)."""
        cfg = self.config
        discounts = cfg.gamma ** jnp.arange(seg.rewards.shape[1])
        n = seg.mask.sum(axis=1)
        tail = self.value_net.apply(value_params, seg.next_observations[:, -1])
        g = (seg.rewards * discounts).sum(axis=1) + cfg.gamma ** n * (1.0 - seg.dones[:, -1]) \
            * tail
        return iql_loss.clip_to_range(jax.lax.stop_gradient(g), self.value_range)

    # ------------------------------------------------------------------ update
    def update(self, state: DiffuserState, batch: Batch, key: jax.Array,
               ) -> tuple[DiffuserState, Metrics]:
        cfg = self.config
        k_plan, k_t, k_eps = jax.random.split(key, 3)

        # 1. IQL critic: V, the returns' bootstrap.
        critic, value, target, _, _, metrics = iql_loss.critic_step(
            self.critic_net, self.value_net, state.critic, state.value,
            state.target_critic_params, batch, cfg.expectile, cfg.gamma, cfg.tau,
            self.value_range)

        # 2. Planner: the diffusion loss on the segments starting at the batch's rows.
        seg = batch.segments
        planner, plan_loss = self.planner._train_step(state.planner, seg.observations,
                                                      seg.actions, seg.mask, k_plan)

        # 3. Guide: J of the noised segments (s_0 clean, as when planning) toward G.
        lay = self.planner.layout
        x = lay.flatten(seg.observations, seg.actions)
        t = self.planner.train_times(k_t, x.shape[0])
        alpha, sigma = self.planner.schedule.alpha_sigma(t)
        z = inpaint(alpha[:, None] * x + sigma[:, None] * jax.random.normal(k_eps, x.shape),
                    lay.slot_mask(1, 0), x)
        g = self.segment_returns(value.params, seg)

        def returns_loss_fn(params):
            return jnp.mean((self.plan_value(params, z, t) - g) ** 2)

        ret_loss, grads = jax.value_and_grad(returns_loss_fn)(state.returns.params)
        returns = state.returns.apply_gradients(grads=grads)
        new = state.replace(planner=planner, returns=returns, critic=critic, value=value,
                            target_critic_params=target)
        return new, {**metrics, "planner_loss": plan_loss, "returns_loss": ret_loss,
                     "segment_return": g.mean()}

    # ------------------------------------------------------------------ planning
    def guidance(self, returns_params) -> Guidance:
        cfg = self.config
        return Guidance(value=lambda z, t: self.plan_value(returns_params, z, t),
                        scale=cfg.guide_scale, steps=cfg.guide_steps, stop_last=cfg.guide_stop,
                        scale_by_variance=cfg.guide_by_variance)

    def guided_plans(self, state: DiffuserState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """K-step value-guided ancestral plans (B, D) with s_0 = obs inpainted."""
        lay, planner = self.planner.layout, self.planner
        k_noise, k_steps = jax.random.split(key)
        return ddpm_sample(planner.denoiser(state.planner.ema_params), planner.schedule,
                           planner.config.parameterization, k_steps,
                           planner.noise(k_noise, obs.shape[0]), self.config.steps,
                           lay.slot_mask(1, 0), lay.condition_values(obs),
                           planner.config.clip_denoised, self.guidance(state.returns.params))

    def student_plans(self, state: DiffuserState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """D-Diffuser: one DDIM step of the distilled student (B, D)."""
        return self.planner.sample(state.student_params, obs,
                                   self.planner.noise(key, obs.shape[0]), steps=1)

    def plans(self, state: DiffuserState, obs: jax.Array, key: jax.Array) -> jax.Array:
        if not self.config.distill:
            return self.guided_plans(state, obs, key)
        return jax.lax.cond(state.distillations > 0,
                            lambda: self.student_plans(state, obs, key),
                            lambda: self.guided_plans(state, obs, key))

    def explore(self, state: DiffuserState, obs: jax.Array, key: jax.Array,
                context: ActContext | None = None) -> tuple[jax.Array, Metrics]:
        """`candidates` plans per state; the first action of the one with the highest J."""
        n = self.config.candidates
        plans = self.plans(state, jnp.repeat(obs, n, axis=0), key)
        action, scores = self.select_plan(state, plans, obs.shape[0])
        return action, {"plan_value": scores.max(axis=-1).mean(),
                        "plan_value_spread": scores.std(axis=-1).mean()}

    def select_plan(self, state: DiffuserState, plans: jax.Array,
                    batch: int) -> tuple[jax.Array, jax.Array]:
        """Eq. 4 extraction from `plans` (batch * n, D), n candidates per state in a row: the
        first action of each state's plan with the highest J at t = 0, and the (batch, n) J
        scores. Any sampler's plans can be ranked this way (the diagnosis scripts do)."""
        scores = self.plan_value(state.returns.params, plans,
                                 jnp.zeros((plans.shape[0],))).reshape(batch, -1)
        best = jnp.argmax(scores, axis=-1)
        actions = self.planner.layout.action_slot(plans).reshape(batch, scores.shape[1], -1)
        return jnp.take_along_axis(actions, best[:, None, None], axis=1)[:, 0], scores

    def act(self, state: DiffuserState, obs: jax.Array, key: jax.Array, explore: bool,
            context: ActContext | None = None) -> jax.Array:
        return self.explore(state, obs, key, context)[0]

    def acting_view(self, state: DiffuserState) -> DiffuserState:
        """Planning reads the planner's EMA weights, J, and the student."""
        return state.replace(planner=state.planner.replace(params=None, opt_state=None),
                             returns=state.returns.replace(opt_state=None), critic=None,
                             value=None, target_critic_params=None)

    def state_value(self, state: DiffuserState, obs: jax.Array) -> jax.Array:
        return self.value_net.apply(state.value.params, obs)

    def q_value(self, state: DiffuserState, obs: jax.Array, act: jax.Array) -> jax.Array:
        return self.critic_net.apply(state.critic.params, obs, act).min(axis=0)
