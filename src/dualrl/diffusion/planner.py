"""Trajectory diffusion planner (SPEC §2) and the policy / transition extracted from it (§3).

A segment τ = [(s_0, a_0), …, (s_{H−1}, a_{H−1})] is flattened to a vector of H·(ds+da)
numbers. Training inpaints the clean s_0 (and, for half of the examples, a_0 too, so the same
network serves the transition model) into the noisy input and regresses the parameterisation
target on every other real (non-padded) slot. Extraction:
  policy(s)        = a_0 slot of a plan sampled with s_0 = s,
  transition(s, a) = s_1 slot of a plan sampled with s_0 = s, a_0 = a.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from dualrl.diffusion.conditioning import inpaint
from dualrl.diffusion.ema import ema_update
from dualrl.diffusion.parameterization import target, to_x_eps
from dualrl.diffusion.samplers import ddim_sample, ddpm_sample
from dualrl.diffusion.schedules import Schedule


@dataclass
class PlannerConfig:
    horizon: int = 8
    backbone: str = "mlp"  # "mlp" (CPU default) or "unet" (Diffuser temporal U-Net)
    hidden: tuple[int, ...] = (256, 256, 256)  # MLP widths
    unet_dim: int = 32
    unet_mults: tuple[int, ...] = (1, 2, 4, 8)
    parameterization: str = "v"  # "v", "x0" or "eps"
    schedule: str = "cosine"  # "cosine" or "vp"
    beta_min: float = 0.1  # the VP schedule's β range (Diff-QL: 0.1, 10)
    beta_max: float = 20.0
    time_dim: int = 32  # the MLP's sinusoidal time embedding (Diff-QL: 16)
    clip_denoised: float | None = None  # x̂ clipped to [−c, c] while sampling (Diff-QL: 1)
    # train at the K sampling times t = k/K only (Diff-QL's discrete-time DDPM) instead of
    # t ~ U(0, 1): a small network at K = 5 then fits the levels it is sampled at
    discrete_times: bool = False
    teacher_steps: int = 16  # K of the DDIM teacher (halves to 1 by distillation)
    sampler: str = "ddim"  # "ddim" or "ddpm"
    lr: float = 3e-4
    batch_size: int = 256
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    transition_condition_prob: float = 0.5  # share of examples also conditioned on a_0
    train_steps: int = 20_000


@flax.struct.dataclass
class PlannerState:
    params: Any
    ema_params: Any
    opt_state: Any
    step: jax.Array


class Layout:
    """Where s_t and a_t live in the flattened segment."""

    def __init__(self, horizon: int, obs_dim: int, act_dim: int):
        self.horizon, self.obs_dim, self.act_dim = horizon, obs_dim, act_dim
        self.width = obs_dim + act_dim
        self.dim = horizon * self.width

    def flatten(self, obs: jax.Array, act: jax.Array) -> jax.Array:
        return jnp.concatenate([obs, act], axis=-1).reshape(obs.shape[0], self.dim)

    def unflatten(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = x.reshape(x.shape[0], self.horizon, self.width)
        return x[..., : self.obs_dim], x[..., self.obs_dim :]

    def slot_mask(self, state_steps: int = 1, action_steps: int = 0) -> jax.Array:
        """(D,) bool: the first `state_steps` states and `action_steps` actions."""
        m = jnp.zeros((self.horizon, self.width), bool)
        m = m.at[:state_steps, : self.obs_dim].set(True)
        m = m.at[:action_steps, self.obs_dim :].set(True)
        return m.reshape(self.dim)

    def condition_values(self, s0: jax.Array, a0: jax.Array | None = None) -> jax.Array:
        """(B, D) values holding s_0 (and a_0) in their slots, zeros elsewhere."""
        v = jnp.zeros((s0.shape[0], self.horizon, self.width))
        v = v.at[:, 0, : self.obs_dim].set(s0)
        if a0 is not None:
            v = v.at[:, 0, self.obs_dim :].set(a0)
        return v.reshape(s0.shape[0], self.dim)

    def action_slot(self, x: jax.Array) -> jax.Array:
        return x[:, self.obs_dim : self.width]

    def next_state_slot(self, x: jax.Array) -> jax.Array:
        return x[:, self.width : self.width + self.obs_dim]


def make_backbone(config: PlannerConfig, layout: Layout):
    if config.backbone == "mlp":
        from dualrl.nn.denoisers import MLPDenoiser

        return MLPDenoiser(out_dim=layout.dim, hidden=config.hidden, time_dim=config.time_dim)
    if config.backbone == "unet":
        from dualrl.nn.unet import TemporalUNetDenoiser

        return TemporalUNetDenoiser(out_dim=layout.dim, horizon=layout.horizon,
                                    transition_dim=layout.width, dim=config.unet_dim,
                                    dim_mults=tuple(config.unet_mults))
    raise ValueError(f"unknown backbone '{config.backbone}'; valid: mlp, unet")


class TrajectoryPlanner:
    """Pure functions over a `PlannerState`; jitted once per planner object."""

    def __init__(self, config: PlannerConfig, obs_dim: int, act_dim: int):
        if config.horizon < 1:
            raise ValueError("the planner needs horizon >= 1")
        self.config = config
        self.layout = Layout(config.horizon, obs_dim, act_dim)
        self.net = make_backbone(config, self.layout)
        self.schedule = Schedule(kind=config.schedule, beta_min=config.beta_min,
                                 beta_max=config.beta_max)
        self.tx = optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.adam(config.lr))
        self.train_step = jax.jit(self._train_step)
        self.sample = jax.jit(self._sample, static_argnames=("steps", "sampler"))

    # ---------------------------------------------------------------- training
    def init(self, key: jax.Array) -> PlannerState:
        z = jnp.zeros((1, self.layout.dim))
        params = jax.jit(self.net.init)(key, z, jnp.zeros((1,)))
        return PlannerState(params=params, ema_params=jax.tree.map(jnp.copy, params),
                            opt_state=self.tx.init(params), step=jnp.zeros((), jnp.int32))

    def condition_masks(self, key: jax.Array, batch: int) -> jax.Array:
        """(B, D): s_0 always, a_0 too for a `transition_condition_prob` share."""
        with_action = jax.random.bernoulli(key, self.config.transition_condition_prob, (batch,))
        return jnp.where(with_action[:, None], self.layout.slot_mask(1, 1)[None],
                         self.layout.slot_mask(1, 0)[None])

    def train_times(self, key: jax.Array, batch: int) -> jax.Array:
        """Noise levels of training examples: U(0, 1), or the K sampling times k/K."""
        if not self.config.discrete_times:
            return jax.random.uniform(key, (batch,))
        k = self.config.teacher_steps
        return jax.random.randint(key, (batch,), 1, k + 1).astype(jnp.float32) / k

    def loss(self, params, obs: jax.Array, act: jax.Array, valid: jax.Array,
             key: jax.Array, cond: jax.Array | None = None) -> jax.Array:
        """Masked diffusion loss (Eq. 3 in v/x0/ε form) over non-conditioned real slots.
        `cond` (B, D) bool: the inpainted entries of each example (default:
        `condition_masks`, s_0 and sometimes a_0)."""
        lay, kind = self.layout, self.config.parameterization
        x = lay.flatten(obs, act)
        b = x.shape[0]
        k_t, k_eps, k_mask = jax.random.split(key, 3)
        t = self.train_times(k_t, b)
        eps = jax.random.normal(k_eps, x.shape)
        alpha, sigma = self.schedule.alpha_sigma(t)
        alpha, sigma = alpha[:, None], sigma[:, None]
        if cond is None:
            cond = self.condition_masks(k_mask, b)
        z = inpaint(alpha * x + sigma * eps, cond, x)
        pred = self.net.apply(params, z, t)
        slot_valid = jnp.repeat(valid, lay.width, axis=1)  # (B, D)
        weight = slot_valid * (1.0 - cond)
        err = (pred - target(kind, x, eps, alpha, sigma)) ** 2
        return (err * weight).sum() / jnp.maximum(weight.sum(), 1.0)

    def _train_step(self, state: PlannerState, obs, act, valid, key, cond=None):
        loss, grads = jax.value_and_grad(self.loss)(state.params, obs, act, valid, key, cond)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = ema_update(state.ema_params, params, self.config.ema_decay)
        return PlannerState(params, ema, opt_state, state.step + 1), loss

    @partial(jax.jit, static_argnums=(0, 4, 5))
    def train_chunk(self, state: PlannerState, buffer_state, key: jax.Array, n: int,
                    batch_size: int):
        """n updates on segments sampled from a replay buffer, in one lax.scan."""
        from dualrl.data.buffer import ReplayBuffer

        def body(st, i):
            k_seg, k_loss = jax.random.split(jax.random.fold_in(key, i))
            seg = ReplayBuffer.sample_segments(buffer_state, k_seg, batch_size,
                                               self.config.horizon)
            return self._train_step(st, seg.observations, seg.actions, seg.mask, k_loss)

        state, losses = jax.lax.scan(body, state, state.step + jnp.arange(n))
        return state, losses.mean()

    def fit(self, state: PlannerState, buffer_state, key: jax.Array, steps: int,
            chunk: int = 500, progress: bool = False, desc: str = "planner",
            ) -> tuple[PlannerState, float]:
        """`steps` updates in `chunk`-sized compiled calls (key of a chunk: fold_in(key,
        first step)); stops with an error if the loss becomes non-finite."""
        from tqdm.auto import tqdm

        loss = float("nan")
        with tqdm(total=steps, disable=not progress, desc=desc, mininterval=1.0) as bar:
            done = 0
            while done < steps:
                n = min(chunk, steps - done)
                state, chunk_loss = self.train_chunk(state, buffer_state,
                                                     jax.random.fold_in(key, done), n,
                                                     self.config.batch_size)
                loss = float(chunk_loss)
                if not math.isfinite(loss):
                    raise FloatingPointError(f"planner loss became non-finite at step {done + n}")
                done += n
                bar.update(n)
                bar.set_postfix(loss=f"{loss:.4f}")
        return state, loss

    # ---------------------------------------------------------------- sampling
    def denoiser(self, params):
        return lambda z, t: self.net.apply(params, z, t)

    def _sample(self, params, s0: jax.Array, noise: jax.Array, a0: jax.Array | None = None,
                key: jax.Array | None = None, steps: int = 16, sampler: str = "ddim"):
        """Plans (B, D) with s_0 (and a_0) inpainted."""
        lay = self.layout
        mask = lay.slot_mask(1, 0 if a0 is None else 1)
        values = lay.condition_values(s0, a0)
        den = self.denoiser(params)
        kind = self.config.parameterization
        clip = self.config.clip_denoised
        if sampler == "ddim":
            return ddim_sample(den, self.schedule, kind, noise, steps, mask, values, clip)
        if sampler == "ddpm":
            assert key is not None, "ddpm sampling needs a key"
            return ddpm_sample(den, self.schedule, kind, key, noise, steps, mask, values, clip)
        raise ValueError(f"unknown sampler '{sampler}'; valid: ddim, ddpm")

    def noise(self, key: jax.Array, batch: int) -> jax.Array:
        return jax.random.normal(key, (batch, self.layout.dim))

    def policy(self, params, s: jax.Array, noise: jax.Array, steps: int | None = None,
               sampler: str = "ddim", key: jax.Array | None = None) -> jax.Array:
        """π(a|s) = p(a_0 | s_0 = s): the a_0 slot of a plan."""
        plan = self.sample(params, s, noise, None, key, steps=steps or self.config.teacher_steps,
                           sampler=sampler)
        return self.layout.action_slot(plan)

    def transition(self, params, s: jax.Array, a: jax.Array, noise: jax.Array,
                   steps: int | None = None, sampler: str = "ddim",
                   key: jax.Array | None = None) -> jax.Array:
        """P̂(s'|s, a) = p(s_1 | s_0 = s, a_0 = a): the s_1 slot of a plan."""
        if self.layout.horizon < 2:
            raise ValueError("a horizon-1 model has no s_1 slot: no transition model")
        plan = self.sample(params, s, noise, a, key, steps=steps or self.config.teacher_steps,
                           sampler=sampler)
        return self.layout.next_state_slot(plan)

    def x_eps(self, params, z, t, mask, values):
        """(x̂, ε̂) of one network call (used by distillation)."""
        z = inpaint(z, mask, values)
        alpha, sigma = self.schedule.alpha_sigma(t)
        x, eps = to_x_eps(self.config.parameterization, self.net.apply(params, z, t), z,
                          alpha[:, None], sigma[:, None])
        return inpaint(x, mask, values), eps
