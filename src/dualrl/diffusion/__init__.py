"""Diffusion, in separable parts (knows nothing of RL): schedules, parameterisations,
samplers, inpainting, EMA; the trajectory planner and progressive distillation on top."""

from dualrl.diffusion.distill import DistillConfig, progressive_distill
from dualrl.diffusion.planner import Layout, PlannerConfig, PlannerState, TrajectoryPlanner
from dualrl.diffusion.schedules import Schedule

__all__ = [
    "DistillConfig",
    "Layout",
    "PlannerConfig",
    "PlannerState",
    "Schedule",
    "TrajectoryPlanner",
    "progressive_distill",
]
