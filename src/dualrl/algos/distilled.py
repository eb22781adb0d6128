"""Distilled one-step students for diffusion baselines ("D-Diff-QL", "D-DACER",
"D-Diffuser"; paper Fig. 2a/2b): ONE mixin, so every method distils the same way as DUAL.

At the online switch the method's K-step diffusion model (its `TrajectoryPlanner`, with the
parameters `distillation_teacher` returns) is progressively distilled (diffusion/distill.py:
DDIM teacher, K → K/2 → … → 1) into a one-step student, which then acts; online the teacher
keeps learning and the student is distilled again from it every `redistill_every` online
steps (the acting policy is at most that stale). The state carries `student_params`,
`distillations` (how many so far; 0 means the teacher still acts) and `distill_rel_mse` (the
last distillation's LAST ROUND: the 1-step student's policy samples' MSE to those of the
2-step student it was distilled from, over their variance; the student against the K-step
teacher is in `distill_reports[-1]["policy_rel_mse_to_teacher"]`). The config
carries `distill`, `distill_steps_per_round` and `redistill_every`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


class DistilledStudent:
    """Mixin before `Agent` (and before `LaplaceActing`, whose hooks it chains to)."""

    planner: Any  # the method's TrajectoryPlanner
    config: Any
    distill_reports: list[dict[str, Any]]

    def distillation_teacher(self, state: Any) -> Any:
        """The parameters of the K-step model the student is distilled from."""
        raise NotImplementedError

    def distill_student(self, state: Any, buffer_state: Any, key: jax.Array) -> Any:
        """Progressive distillation of the current teacher on segments of B (the student's
        EMA weights act afterwards)."""
        from dualrl.diffusion.distill import DistillConfig, progressive_distill
        from dualrl.diffusion.planner import PlannerState

        params = self.distillation_teacher(state)
        teacher = PlannerState(params=params, ema_params=params,
                               opt_state=self.planner.tx.init(params),
                               step=jnp.zeros((), jnp.int32))
        student, reports = progressive_distill(
            self.planner, teacher, buffer_state,
            DistillConfig(steps_per_round=self.config.distill_steps_per_round), key,
            log=lambda report: None)
        self.distill_reports = reports
        return state.replace(student_params=student.ema_params,
                             distillations=state.distillations + 1,
                             distill_rel_mse=jnp.asarray(reports[-1]["policy_rel_mse"],
                                                         jnp.float32))

    def student_initial_fields(self, params: Any) -> dict[str, Any]:
        """The state fields of a method before any distillation (None without --distill)."""
        if not self.config.distill:
            return dict(student_params=None, distillations=None, distill_rel_mse=None)
        return dict(student_params=jax.tree.map(jnp.copy, params),
                    distillations=jnp.zeros((), jnp.int32), distill_rel_mse=jnp.zeros(()))

    def _redistill_due(self, step: int) -> bool:
        cfg = self.config
        return cfg.distill and step > 0 and step % cfg.redistill_every == 0

    def on_phase_start(self, state: Any, phase: str, buffer: Any, buffer_state: Any,
                       key: jax.Array) -> Any:
        if phase == "online" and self.config.distill:
            state = self.distill_student(state, buffer_state, jax.random.fold_in(key, 7))
        return super().on_phase_start(state, phase, buffer, buffer_state, key)

    def on_online_step(self, state: Any, step: int, buffer: Any, buffer_state: Any,
                       key: jax.Array) -> Any:
        if self._redistill_due(step):
            state = self.distill_student(state, buffer_state, jax.random.fold_in(key, step))
        return super().on_online_step(state, step, buffer, buffer_state, key)

    def online_step_hook_due(self, step: int) -> bool:
        from dualrl.o2o.agent import Agent

        nxt = super().online_step_hook_due  # Agent's default means "every step": not here
        other = getattr(nxt, "__func__", None) is not Agent.online_step_hook_due and nxt(step)
        return self._redistill_due(step) or other

    def diagnostics(self, state: Any) -> dict[str, float]:
        out = super().diagnostics(state)
        if self.config.distill:
            out["distillations"] = int(state.distillations)
            if int(state.distillations) > 0:  # from the state: a resumed run logs the same
                out["distill_policy_rel_mse"] = float(state.distill_rel_mse)
        return out
