"""Diff-QL (Wang et al. 2023, "Diffusion Policies as an Expressive Policy Class for Offline
RL"; SPEC §10), "Diff-QL w LA" (`--laplace`, paper Fig. 3c) and D-Diff-QL (`--distill`).

The actor is a state-conditioned action diffusion model built from `diffusion/`: a horizon-1
`TrajectoryPlanner` over [s, a] with s inpainted (the condition), ε-prediction, the VP
schedule (β 0.1 → 10), T = 5 ancestral (DDPM) steps with x̂ clipped to the action box and
trained at those 5 noise levels (the reference's discrete time), an
MLP denoiser 3 × 256 Mish with a 16-d time embedding — the reference's network. The critic
is a twin Q (3 × 256 Mish).

One update, top to bottom (the reference's `train`):
  1. critic: TD to min_h Q̄_h(s', a'), a' drawn from the EMA actor (or, with `max_q_backup`,
     the max over 10 draws of each head before the min), gradient norm clipped;
  2. actor: BC diffusion loss + η · (−Q_i(s, π(s)) / mean |Q_j(s, π(s))|), π(s) sampled
     through all T steps with gradients, (i, j) a random order of the two heads, the
     denominator detached; gradient norm clipped;
  3. EMA actor: copy-free until `ema_start` updates (it stays at the initial weights, as the
     reference's), then ema ← 0.995 ema + 0.005 θ every `ema_every` updates; Polyak critic.

Acting (offline evaluation and online alike, as the reference's `sample_action`): 50
candidate actions per state from the actor, one drawn with probabilities softmax(min_h Q̄_h).
Online exploration is that same draw — stochastic ancestral samples and a stochastic choice
among them — plus the loop's ε-uniform moves where a task's preset sets them; Diff-QL adds
no Gaussian noise of its own (the paper's O2O extension fine-tunes it unchanged on B).

D-Diff-QL (`--distill`, paper Fig. 2a/2b): the same training; at the online switch the actor
is progressively distilled (diffusion/distill.py, DUAL's procedure: DDIM teacher, T → 1) into
a one-step student, which acts (the same 50 candidates and softmax-Q choice, one network
call each); online the T-step teacher keeps learning by the update above and the student is
distilled again from it every `redistill_every` steps (the acting policy is at most that
stale). T must be a power of two (4 for Diff-QL, 16 for DACER).

"Diff-QL w LA": the shared last-layer Laplace (algos/laplace_acting.py) on the denoiser's
output layer (its action columns). The loss it is fitted on is the actor's: the denoising
term is a unit-variance Gaussian likelihood of ε, linear in the head at fixed features, so
its head Hessian is exactly the Gauss–Newton matrix Σ w φ̃φ̃ᵀ the module builds; the Q term,
whose curvature in the head is not positive definite, enters as that likelihood's weights
w = exp(η (Q(s, a) − V(s)) / mean |Q|) — the tilt exp(Q/α) that a BC-regularised Q step
projects the behaviour policy onto, with α = mean |Q| / η (the reference's normalisation).
Acting then draws each of the 50 candidates from one of the M posterior heads (candidate j
from head j mod M), the mixture of the sub-policies, before the same softmax choice.
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
from dualrl.algos.laplace_acting import LaplaceActing, LaplaceSettings
from dualrl.config import check_agent_fields
from dualrl.critics.iql import clip_to_range, value_range
from dualrl.critics.networks import QEnsemble
from dualrl.critics.sac import soft_advantage_weights
from dualrl.data.buffer import Batch
from dualrl.diffusion.conditioning import inpaint
from dualrl.diffusion.ema import ema_update
from dualrl.diffusion.planner import PlannerConfig, TrajectoryPlanner
from dualrl.diffusion.samplers import ddpm_sample
from dualrl.nn.denoisers import MLPDenoiser
from dualrl.o2o.agent import ActContext, Agent, Metrics
from dualrl.uq.laplace import with_bias


@dataclass
class DiffQLConfig(LaplaceSettings):
    flag: ClassVar[str] = "diffql"  # the method's flag prefix, for error messages
    hidden: tuple[int, ...] = (256, 256, 256)  # twin Q, Mish
    actor_hidden: tuple[int, ...] = (256, 256, 256)  # the denoiser, Mish
    time_dim: int = 16
    steps: int = 5  # T, ancestral sampling steps
    beta_min: float = 0.1
    beta_max: float = 10.0
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    eta: float = 1.0  # the Q term's weight (locomotion 1; AntMaze 0.5–4.5 per the reference)
    grad_norm: float = 1.0  # both networks' gradient-norm clip (≤ 0: none; hopper 9)
    ema_decay: float = 0.995
    ema_start: int = 1_000
    ema_every: int = 5
    max_q_backup: bool = False
    backup_samples: int = 10
    candidates: int = 50  # actions drawn per state when acting
    value_min: float | None = None  # TD targets clipped to the task's return range
    value_max: float | None = None
    # D-Diff-QL (--distill): the T-step policy progressively distilled (diffusion/distill.py,
    # as DUAL's) to a 1-step DDIM student at the switch and again every `redistill_every`
    # online steps from the fine-tuned teacher; the student acts (T must be a power of two)
    distill: bool = False
    distill_steps_per_round: int = 2_000
    redistill_every: int = 5_000
    # "Diff-QL w LA" (--laplace, LaplaceSettings): the shared Laplace on the denoiser's head
    max_weight: float = 100.0
    weight_samples: int = 10  # policy draws per state for V(s) in the Laplace weights

    def __post_init__(self) -> None:
        check_agent_fields(self, self.flag, ("steps", "candidates", "backup_samples",
                                             "ema_every", "num_samples", "weight_samples"))
        if self.distill and (self.steps < 2 or self.steps & (self.steps - 1)):
            raise ValueError(f"--distill halves the sampling steps down to 1: steps "
                             f"(--{self.flag}.steps) must be a power of two >= 2, got "
                             f"{self.steps} (e.g. --{self.flag}.steps 4)")
        if self.distill and self.laplace:
            raise ValueError("--distill and --laplace together are not supported")


@flax.struct.dataclass
class DiffQLState:
    actor: TrainState  # the denoiser
    ema_params: flax.core.FrozenDict  # the EMA actor: target actions
    critic: TrainState
    target_critic_params: flax.core.FrozenDict
    deltas: jax.Array  # (M, F+1, da) Laplace draws minus the MAP head ("w LA")
    prior_precision: jax.Array
    refits: jax.Array
    steps: jax.Array
    # the 1-step student (--distill; None otherwise), its distillations so far and the last
    # one's fidelity (policy samples' MSE to the teacher's / their variance)
    student_params: Any = None
    distillations: jax.Array | None = None
    distill_rel_mse: jax.Array | None = None


def _optimizer(lr: float, grad_norm: float) -> optax.GradientTransformation:
    if grad_norm <= 0:
        return optax.adam(lr)
    return optax.chain(optax.clip_by_global_norm(grad_norm), optax.adam(lr))


class DiffQL(DistilledStudent, LaplaceActing, Agent):
    name = "diffql"

    def __init__(self, config: DiffQLConfig):
        self.config = config
        self.critic_net = QEnsemble(num_qs=2, hidden=config.hidden, activation="mish")
        self.planner: TrajectoryPlanner | None = None
        self.obs_dim = self.act_dim = 0

    def planner_config(self) -> PlannerConfig:
        cfg = self.config
        return PlannerConfig(horizon=1, hidden=cfg.actor_hidden, time_dim=cfg.time_dim,
                             parameterization="eps", schedule="vp", beta_min=cfg.beta_min,
                             beta_max=cfg.beta_max, teacher_steps=cfg.steps, sampler="ddpm",
                             lr=cfg.actor_lr, grad_clip=cfg.grad_norm, ema_decay=cfg.ema_decay,
                             transition_condition_prob=0.0, clip_denoised=1.0,
                             discrete_times=True)

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> DiffQLState:
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.planner = TrajectoryPlanner(self.planner_config(), obs_dim, act_dim)
        return jax.jit(self._init)(key)

    def _init(self, key: jax.Array) -> DiffQLState:
        cfg = self.config
        k_actor, k_critic = jax.random.split(key)
        actor_params = self.planner.net.init(k_actor, jnp.zeros((1, self.planner.layout.dim)),
                                             jnp.zeros((1,)))
        critic_params = self.critic_net.init(k_critic, jnp.zeros((1, self.obs_dim)),
                                             jnp.zeros((1, self.act_dim)))
        zero = jnp.zeros((), jnp.int32)
        return DiffQLState(
            actor=TrainState.create(apply_fn=self.planner.net.apply, params=actor_params,
                                    tx=_optimizer(cfg.actor_lr, cfg.grad_norm)),
            ema_params=jax.tree.map(jnp.copy, actor_params),
            critic=TrainState.create(apply_fn=self.critic_net.apply, params=critic_params,
                                     tx=_optimizer(cfg.critic_lr, cfg.grad_norm)),
            target_critic_params=jax.tree.map(jnp.copy, critic_params),
            deltas=jnp.zeros((cfg.num_samples, cfg.actor_hidden[-1] + 1, self.act_dim)),
            prior_precision=jnp.zeros(()), refits=zero, steps=zero,
            **self.student_initial_fields(actor_params))

    # ------------------------------------------------------------------ the policy
    def sample_actions(self, params, obs: jax.Array, key: jax.Array,
                       deltas: jax.Array | None = None) -> jax.Array:
        """T-step ancestral samples π(·|s), (B, da), differentiable in `params`. `deltas`
        (B, F+1, da): per-row perturbations of the head's action columns (Laplace draws)."""
        lay, cfg = self.planner.layout, self.planner.config
        ds = lay.obs_dim
        net = self.planner.net

        def denoise(z, t):
            phi = net.apply(params, z, t, method=MLPDenoiser.features)
            out = net.apply(params, phi, method=MLPDenoiser.head)
            if deltas is None:
                return out
            shift = jnp.einsum("bf,bfk->bk", with_bias(phi), deltas)
            return out.at[:, ds:].add(shift)

        k_noise, k_steps = jax.random.split(key)
        noise = jax.random.normal(k_noise, (obs.shape[0], lay.dim))
        plan = ddpm_sample(denoise, self.planner.schedule, cfg.parameterization, k_steps, noise,
                           cfg.teacher_steps, lay.slot_mask(1, 0), lay.condition_values(obs),
                           cfg.clip_denoised)
        return lay.action_slot(plan)

    def student_actions(self, params, obs: jax.Array, key: jax.Array) -> jax.Array:
        """The distilled policy: ONE DDIM step from noise with s inpainted, (B, da)."""
        lay = self.planner.layout
        noise = jax.random.normal(key, (obs.shape[0], lay.dim))
        return lay.action_slot(self.planner.sample(params, obs, noise, steps=1))

    def distilled_or_teacher(self, state: DiffQLState, obs: jax.Array,
                             key: jax.Array) -> jax.Array:
        """The student once one is distilled (from the online switch on), before that the
        T-step policy itself: the offline phase's evaluations are the teacher's."""
        return jax.lax.cond(state.distillations > 0,
                            lambda: self.student_actions(state.student_params, obs, key),
                            lambda: self.sample_actions(state.actor.params, obs, key))

    def distillation_teacher(self, state: DiffQLState):
        return state.actor.params

    def bc_loss(self, params, obs: jax.Array, act: jax.Array, key: jax.Array) -> jax.Array:
        """The denoising (ε-prediction) loss on the action slots, s inpainted."""
        valid = jnp.ones((obs.shape[0], 1))
        return self.planner.loss(params, obs[:, None], act[:, None], valid, key)

    def _q(self, params, obs: jax.Array, act: jax.Array) -> jax.Array:
        return self.critic_net.apply(params, obs, act)  # (2, B)

    def _repeat(self, obs: jax.Array, n: int) -> jax.Array:
        return jnp.repeat(obs, n, axis=0)

    # ------------------------------------------------------------------ update
    def critic_step(self, critic: TrainState, batch: Batch, q_next: jax.Array):
        """One step of both Q heads on the TD target r + γ (1 − d) q_next (clipped to the
        value range): (new critic, loss, mean Q on the batch, target)."""
        cfg = self.config
        target = batch.rewards + cfg.gamma * (1.0 - batch.dones) * q_next
        target = jax.lax.stop_gradient(
            clip_to_range(target, value_range(cfg.value_min, cfg.value_max, f"--{cfg.flag}")))

        def critic_loss_fn(params):
            qs = self._q(params, batch.observations, batch.actions)
            return jnp.sum(jnp.mean((qs - target[None]) ** 2, axis=-1)), qs.mean()

        (loss, q_data), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(critic.params)
        return critic.apply_gradients(grads=grads), loss, q_data, target

    def update(self, state: DiffQLState, batch: Batch, key: jax.Array,
               ) -> tuple[DiffQLState, Metrics]:
        cfg = self.config
        k_next, k_bc, k_pi, k_order = jax.random.split(key, 4)
        b = batch.observations.shape[0]

        # 1. Critic: TD to the target twin at the EMA actor's next actions.
        if cfg.max_q_backup:
            n = cfg.backup_samples
            next_obs = self._repeat(batch.next_observations, n)
            next_act = self.sample_actions(state.ema_params, next_obs, k_next)
            q_next = self._q(state.target_critic_params, next_obs, next_act)
            q_next = q_next.reshape(2, b, n).max(axis=-1).min(axis=0)
        else:
            next_act = self.sample_actions(state.ema_params, batch.next_observations, k_next)
            q_next = self._q(state.target_critic_params, batch.next_observations,
                             next_act).min(axis=0)
        critic, critic_loss, q_data, target = self.critic_step(state.critic, batch, q_next)

        # 2. Actor: BC + η · normalised Q of its own samples (the UPDATED critic, as the ref.)
        first = jax.random.bernoulli(k_order)

        def actor_loss_fn(params):
            bc = self.bc_loss(params, batch.observations, batch.actions, k_bc)
            new_act = self.sample_actions(params, batch.observations, k_pi)
            q1, q2 = self._q(critic.params, batch.observations, new_act)
            num, den = jnp.where(first, q1, q2), jnp.where(first, q2, q1)
            q_loss = -num.mean() / jax.lax.stop_gradient(jnp.abs(den).mean())
            return bc + cfg.eta * q_loss, (bc, q_loss)

        (actor_loss, (bc, q_loss)), grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.actor.params)
        actor = state.actor.apply_gradients(grads=grads)

        # 3. EMA actor (held at its initial weights until ema_start) and Polyak critic.
        steps = state.steps + 1  # the reference counts the update before its EMA check
        due = (steps >= cfg.ema_start) & (steps % cfg.ema_every == 0)
        ema = jax.tree.map(lambda new, old: jnp.where(due, new, old),
                           ema_update(state.ema_params, actor.params, cfg.ema_decay),
                           state.ema_params)
        target_params = optax.incremental_update(critic.params, state.target_critic_params,
                                                 cfg.tau)
        new = state.replace(actor=actor, ema_params=ema, critic=critic,
                            target_critic_params=target_params, steps=steps)
        return new, {"critic_loss": critic_loss, "q_data": q_data, "actor_loss": actor_loss,
                     "bc_loss": bc, "q_loss": q_loss, "target_q": target.mean()}

    # ------------------------------------------------------------------ acting
    def acting_view(self, state: DiffQLState) -> DiffQLState:
        return state.replace(critic=None, ema_params=None,
                             actor=state.actor.replace(opt_state=None))

    def act(self, state: DiffQLState, obs: jax.Array, key: jax.Array, explore: bool,
            context: ActContext | None = None) -> jax.Array:
        return self.explore(state, obs, key, context)[0]

    def explore(self, state: DiffQLState, obs: jax.Array, key: jax.Array,
                context: ActContext | None = None) -> tuple[jax.Array, Metrics]:
        """50 candidates per state (from the M posterior heads in turn with Laplace), one
        drawn with probabilities softmax(min_h Q̄_h(s, a_j)) — the reference's selection."""
        cfg = self.config
        b, n = obs.shape[0], cfg.candidates
        k_sample, k_pick = jax.random.split(key)
        rows = self._repeat(obs, n)  # (B·N, ds), state-major
        deltas = None
        if cfg.laplace:
            head = jnp.arange(n) % cfg.num_samples
            deltas = jnp.tile(state.deltas[head], (b, 1, 1))  # row b·N + j: head j mod M
        if cfg.distill:
            cands = self.distilled_or_teacher(state, rows, k_sample)
        else:
            cands = self.sample_actions(state.actor.params, rows, k_sample, deltas)
        q = self._q(state.target_critic_params, rows, cands).min(axis=0).reshape(b, n)
        pick = jax.random.categorical(k_pick, q, axis=-1)
        cands = cands.reshape(b, n, -1)
        action = jnp.take_along_axis(cands, pick[:, None, None], axis=1)[:, 0]
        return action, {"candidate_std": cands.std(axis=1).mean()}

    def q_value(self, state: DiffQLState, obs: jax.Array, act: jax.Array) -> jax.Array:
        return self.q_value_fn(state.critic.params)(obs, act)

    # ---------------------------------------------- "Diff-QL w LA" (SPEC §6, shared module)
    def laplace_enabled(self) -> bool:
        return self.config.laplace

    def head_weights(self, params) -> jax.Array:
        """[W; b] of the denoiser's output layer, action columns: the ε̂ of the action."""
        out = params["params"]["output"]
        ds = self.obs_dim
        return jnp.concatenate([out["kernel"][:, ds:], out["bias"][None, ds:]], axis=0)

    def denoising_features(self, params, obs: jax.Array, act: jax.Array, key: jax.Array):
        """(φ, ε) of one denoising example per row — t as in training, ε ~ N(0, I) from `key` —
        so that ε̂ = φ̃ W on the action columns: the regression the Laplace head sees."""
        lay, sch = self.planner.layout, self.planner.schedule
        x = lay.flatten(obs[:, None], act[:, None])
        k_t, k_eps = jax.random.split(key)
        t = self.planner.train_times(k_t, x.shape[0])
        eps = jax.random.normal(k_eps, x.shape)
        alpha, sigma = sch.alpha_sigma(t)
        mask = lay.slot_mask(1, 0)
        z = inpaint(alpha[:, None] * x + sigma[:, None] * eps, mask, x)
        phi = self.planner.net.apply(params, z, t, method=MLPDenoiser.features)
        return phi, lay.action_slot(eps)

    def likelihood_weights(self, state: DiffQLState, obs: jax.Array,
                           act: jax.Array) -> jax.Array:
        """exp(η (Q(s, a) − V(s)) / mean |Q|), bounded (see the module docstring)."""
        cfg = self.config
        q_fn = self.q_value_fn(state.critic.params)
        scale = jnp.abs(q_fn(obs, act)).mean() / cfg.eta

        def policy(o, key, num):
            draws = self.sample_actions(state.actor.params, self._repeat(o, num), key)
            return draws.reshape(o.shape[0], num, -1), None

        return soft_advantage_weights(q_fn, scale, policy, obs, act, cfg.weight_samples,
                                      cfg.max_weight)

    def q_value_fn(self, params):
        return lambda obs, act: self._q(params, obs, act).min(axis=0)

    def laplace_inputs(self, state: DiffQLState, obs: jax.Array, act: jax.Array):
        phi, _ = self.denoising_features(state.actor.params, obs, act, jax.random.PRNGKey(1))
        weights = self.likelihood_weights(state, obs, act)
        return phi, weights, jnp.ones((obs.shape[0], self.act_dim))
