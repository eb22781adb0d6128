"""Offline stages that can run on their own: fit the trajectory planner on a task's data, and
distil it to a one-step student (`dualrl planner fit|distill`). Both save through the same
checkpoint format as training runs (o2o/checkpoint.py) so later stages and DUAL reuse them.

DIR/
  planner.json            config, dims, normaliser, evaluation of the teacher policy
  distill.json            fidelity of each distillation round
  checkpoints/planner/    the trained planner (params, EMA params, optimiser)
  checkpoints/student/    the 1-step student
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.config import apply_overrides
from dualrl.data.buffer import ReplayBuffer
from dualrl.data.normalizer import Normalizer
from dualrl.diffusion.distill import DistillConfig, progressive_distill
from dualrl.diffusion.planner import PlannerConfig, PlannerState, TrajectoryPlanner
from dualrl.envs.registry import get_task
from dualrl.o2o.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from dualrl.o2o.evaluation import Evaluator

PLANNER_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "frozenlake": {
        "quick": dict(horizon=8, hidden=(128, 128), train_steps=3_000),
        "cpu": dict(horizon=8, hidden=(256, 256, 256), train_steps=20_000),
        "paper": dict(horizon=16, hidden=(256, 256, 256), train_steps=200_000),
    },
}
DISTILL_PRESETS = {
    "quick": dict(steps_per_round=500),
    "cpu": dict(steps_per_round=3_000),
    "paper": dict(steps_per_round=50_000),
}


@dataclasses.dataclass
class PlannerRun:
    planner: TrajectoryPlanner
    state: PlannerState
    normalizer: Normalizer
    buffer: ReplayBuffer
    buffer_state: Any
    info: dict[str, Any]


def _dataset_and_env(task: str, dataset_path: str | None, env_overrides: dict[str, Any]):
    from dualrl.config import TrainConfig
    from dualrl.o2o.loop import prepare_dataset

    spec = get_task(task)
    params = spec.resolve(**env_overrides)
    env = spec.env_factory(params, "offline")
    config = TrainConfig(task=task, dataset=dataset_path, env=dict(env_overrides))
    return prepare_dataset(config, env), spec, params


def evaluate_policy(planner: TrajectoryPlanner, params, normalizer: Normalizer, task: str,
                    env_overrides: dict[str, Any], phase: str, episodes: int, steps: int,
                    seed: int = 0) -> dict[str, float]:
    """Roll out the extracted policy (fresh noise every step) in the task's environment."""
    spec = get_task(task)
    env_params = spec.resolve(**env_overrides)
    evaluator = Evaluator(lambda: spec.env_factory(env_params, phase), episodes,
                          spec.normalized_score)
    key = {"k": jax.random.PRNGKey(seed)}

    def policy(obs: np.ndarray) -> np.ndarray:
        key["k"], sub = jax.random.split(key["k"])
        s = jnp.asarray(normalizer(obs.astype(np.float32)))
        return np.asarray(planner.policy(params, s, planner.noise(sub, s.shape[0]), steps=steps))

    return evaluator.run(policy, seed)


def fit_planner(task: str, out: str | Path, config: PlannerConfig, seed: int = 0,
                dataset: str | None = None, env_overrides: dict[str, Any] | None = None,
                eval_episodes: int = 100, progress: bool = True) -> dict[str, Any]:
    out = Path(out)
    if (out / "planner.json").exists():
        raise FileExistsError(f"{out}: already holds a planner; choose another --out")
    env_overrides = env_overrides or {}
    data, spec, _ = _dataset_and_env(task, dataset, env_overrides)
    normalizer = Normalizer.fit(data.observations)
    buffer = ReplayBuffer(data, 0, normalizer)
    buffer_state = buffer.init_state()
    planner = TrajectoryPlanner(config, data.obs_dim, data.act_dim)
    key = jax.random.PRNGKey(seed)
    state = planner.init(jax.random.fold_in(key, 0))
    start = time.perf_counter()
    state, final_loss = planner.fit(state, buffer_state, key, config.train_steps,
                                    progress=progress, desc=f"planner {task}")
    result = evaluate_policy(planner, state.ema_params, normalizer, task, env_overrides,
                             "offline", eval_episodes, config.teacher_steps, seed)
    info = {
        "task": task, "seed": seed, "dataset": dataset, "env": env_overrides,
        "planner": dataclasses.asdict(config), "obs_dim": data.obs_dim, "act_dim": data.act_dim,
        "normalizer": normalizer.to_dict(), "final_loss": final_loss,
        "teacher_policy_eval": result, "data_success_rate": data.metadata.get("success_rate"),
        "train_seconds": round(time.perf_counter() - start, 2),
    }
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "checkpoints", "planner", state, {}, {"info": info}, keep=10)
    atomic_write_text(out / "planner.json", json.dumps(info, indent=2) + "\n")
    return info


def load_planner(out: str | Path, tag: str = "planner") -> PlannerRun:
    out = Path(out)
    info_path = out / "planner.json"
    if not info_path.exists():
        raise FileNotFoundError(f"{out}: no planner here (run `dualrl planner fit` first)")
    info = json.loads(info_path.read_text())
    config = apply_overrides(PlannerConfig(), {
        k: tuple(v) if isinstance(v, list) else v for k, v in info["planner"].items()
    })
    planner = TrajectoryPlanner(config, info["obs_dim"], info["act_dim"])
    template = planner.init(jax.random.PRNGKey(0))
    ckpt = out / "checkpoints" / tag
    if not ckpt.exists():
        raise FileNotFoundError(f"{ckpt}: missing (run the stage that writes it first)")
    state, _, _ = load_checkpoint(ckpt, template)
    state = jax.device_put(state)
    data, _, _ = _dataset_and_env(info["task"], info["dataset"], info["env"])
    normalizer = Normalizer.from_dict(info["normalizer"])
    buffer = ReplayBuffer(data, 0, normalizer)
    return PlannerRun(planner, state, normalizer, buffer, buffer.init_state(), info)


def distill_planner(out: str | Path, config: DistillConfig, seed: int = 0,
                    eval_episodes: int = 100, log=print) -> dict[str, Any]:
    out = Path(out)
    run = load_planner(out)
    start = time.perf_counter()
    student, reports = progressive_distill(run.planner, run.state, run.buffer_state, config,
                                           jax.random.PRNGKey(seed + 1), log=log)
    result = evaluate_policy(run.planner, student.ema_params, run.normalizer, run.info["task"],
                             run.info["env"], "offline", eval_episodes, 1, seed)
    summary = {"distill": dataclasses.asdict(config), "rounds": reports,
               "student_policy_eval": result,
               "distill_seconds": round(time.perf_counter() - start, 2)}
    save_checkpoint(out / "checkpoints", "student", student, {}, {"info": summary}, keep=10)
    atomic_write_text(out / "distill.json", json.dumps(summary, indent=2) + "\n")
    return summary
