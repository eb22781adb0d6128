"""Progressive distillation (Salimans & Ho 2022; SPEC §4): K-step DDIM teacher -> 1 step.

Each round, the student (initialised from the teacher) learns to cover with ONE DDIM step
from t to s = t − 2/K what the teacher does in two steps t → t − 1/K → s. Student x-target:
    x̃ = (z̃ − (σ_s/σ_t) z_t) / (α_s − (σ_s/σ_t) α_t)     (= teacher's x̂ when s = 0),
loss max(‖x̃ − x̂‖², ‖ε̃ − ε̂‖²) ("SNR-truncated"), gradients clipped to norm 1. The student of
one round is the teacher of the next: K → K/2 → … → 1. Inpainting applies at every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import optax

from dualrl.diffusion.conditioning import inpaint
from dualrl.diffusion.ema import ema_update
from dualrl.diffusion.planner import PlannerState, TrajectoryPlanner


@dataclass
class DistillConfig:
    steps_per_round: int = 5_000
    batch_size: int = 256
    fidelity_samples: int = 256  # conditioning states used to report student vs teacher


def distill_loss(planner: TrajectoryPlanner, student_params, teacher_params, x: jax.Array,
                 valid: jax.Array, key: jax.Array, teacher_steps: int) -> jax.Array:
    lay, sch = planner.layout, planner.schedule
    b = x.shape[0]
    k_i, k_eps, k_mask = jax.random.split(key, 3)
    student_steps = teacher_steps // 2
    i = jax.random.randint(k_i, (b,), 1, student_steps + 1)
    t = i / student_steps
    mid = t - 1.0 / teacher_steps
    s = t - 2.0 / teacher_steps
    cond = planner.condition_masks(k_mask, b)
    a_t, s_t = (v[:, None] for v in sch.alpha_sigma(t))
    a_m, s_m = (v[:, None] for v in sch.alpha_sigma(mid))
    a_s, s_s = (v[:, None] for v in sch.alpha_sigma(s))
    eps = jax.random.normal(k_eps, x.shape)
    z_t = inpaint(a_t * x + s_t * eps, cond, x)

    # Teacher: two DDIM steps t -> mid -> s.
    x1, e1 = planner.x_eps(teacher_params, z_t, t, cond, x)
    z_mid = inpaint(a_m * x1 + s_m * e1, cond, x)
    x2, e2 = planner.x_eps(teacher_params, z_mid, mid, cond, x)
    z_s = inpaint(a_s * x2 + s_s * e2, cond, x)
    ratio = s_s / s_t
    x_target = jax.lax.stop_gradient((z_s - ratio * z_t) / (a_s - ratio * a_t))
    eps_target = jax.lax.stop_gradient((z_t - a_t * x_target) / s_t)

    # Student: one step from t.
    x_hat, e_hat = planner.x_eps(student_params, z_t, t, cond, x)
    weight = jnp.repeat(valid, lay.width, axis=1) * (1.0 - cond)
    denom = jnp.maximum(weight.sum(axis=1), 1.0)
    x_err = (((x_hat - x_target) ** 2) * weight).sum(axis=1) / denom
    e_err = (((e_hat - eps_target) ** 2) * weight).sum(axis=1) / denom
    return jnp.maximum(x_err, e_err).mean()


@partial(jax.jit, static_argnums=(0, 4, 5, 6))
def distill_chunk(planner: TrajectoryPlanner, state: PlannerState, teacher_params,
                  buffer_state, n: int, batch_size: int, teacher_steps: int, key: jax.Array):
    """n student updates in one lax.scan, segments drawn from the replay buffer."""
    from dualrl.data.buffer import ReplayBuffer

    def body(st: PlannerState, j):
        k_seg, k_loss = jax.random.split(jax.random.fold_in(key, j))
        seg = ReplayBuffer.sample_segments(buffer_state, k_seg, batch_size, planner.layout.horizon)
        x = planner.layout.flatten(seg.observations, seg.actions)
        loss, grads = jax.value_and_grad(distill_loss, argnums=1)(
            planner, st.params, teacher_params, x, seg.mask, k_loss, teacher_steps)
        updates, opt_state = planner.tx.update(grads, st.opt_state, st.params)
        params = optax.apply_updates(st.params, updates)
        ema = ema_update(st.ema_params, params, planner.config.ema_decay)
        return PlannerState(params, ema, opt_state, st.step + 1), loss

    state, losses = jax.lax.scan(body, state, state.step + jnp.arange(n))
    return state, losses.mean()


def fidelity(planner: TrajectoryPlanner, student_params, student_steps: int, teacher_params,
             teacher_steps: int, obs: jax.Array, act: jax.Array, key: jax.Array) -> dict:
    """Relative MSE (MSE / teacher variance) of student vs teacher samples from the SAME
    noise: the a_0 slot of policy samples and the s_1 slot of transition samples."""
    noise = planner.noise(key, obs.shape[0])

    def rel(a, b):
        return float(jnp.mean((a - b) ** 2) / (jnp.var(b) + 1e-8))

    a_s = planner.policy(student_params, obs, noise, steps=student_steps)
    a_t = planner.policy(teacher_params, obs, noise, steps=teacher_steps)
    report = {"policy_rel_mse": rel(a_s, a_t)}
    if planner.layout.horizon > 1:  # a horizon-1 (action-only) model has no transition slot
        s_s = planner.transition(student_params, obs, act, noise, steps=student_steps)
        s_t = planner.transition(teacher_params, obs, act, noise, steps=teacher_steps)
        report["transition_rel_mse"] = rel(s_s, s_t)
    return report


def progressive_distill(planner: TrajectoryPlanner, teacher: PlannerState, buffer_state,
                        config: DistillConfig, key: jax.Array, log=print,
                        start_steps: int | None = None,
                        ) -> tuple[PlannerState, list[dict[str, Any]]]:
    """Halve the teacher's steps until one remains. Returns the 1-step student (its EMA
    weights are the ones to use) and one fidelity report per round: each round's student
    against that round's teacher (the previous student), and in the last report also the
    1-step student against the ORIGINAL K-step teacher (`*_rel_mse_to_teacher`), where the
    rounds' errors add up."""
    from dualrl.data.buffer import ReplayBuffer

    k = start_steps or planner.config.teacher_steps
    if k < 2 or k & (k - 1):
        raise ValueError(f"teacher steps must be a power of two >= 2, got {k}")
    first_steps = k
    teacher_params = first_teacher = teacher.ema_params
    seg = ReplayBuffer.sample_segments(buffer_state, jax.random.fold_in(key, 1_000_000),
                                       config.fidelity_samples, 2)
    obs0, act0 = seg.observations[:, 0], seg.actions[:, 0]
    reports = []
    round_index = 0
    while k > 1:
        student = PlannerState(
            params=teacher_params, ema_params=teacher_params,
            opt_state=planner.tx.init(teacher_params), step=jnp.zeros((), jnp.int32),
        )
        round_key = jax.random.fold_in(key, round_index)
        student, loss = distill_chunk(planner, student, teacher_params, buffer_state,
                                      config.steps_per_round, config.batch_size, k, round_key)
        report = {"round": round_index, "teacher_steps": k, "student_steps": k // 2,
                  "loss": float(loss),
                  **fidelity(planner, student.ema_params, k // 2, teacher_params, k,
                             obs0, act0, jax.random.fold_in(round_key, 1))}
        log(report)
        reports.append(report)
        teacher_params = student.ema_params
        k //= 2
        round_index += 1
    end_to_end = fidelity(planner, student.ema_params, 1, first_teacher, first_steps, obs0, act0,
                          jax.random.fold_in(key, 2_000_000))
    reports[-1].update({f"{name}_to_teacher": value for name, value in end_to_end.items()})
    return student, reports
