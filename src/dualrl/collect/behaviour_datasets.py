"""D4RL-style locomotion datasets from one SAC run (SPEC §9), under D4RL's file names.

From a finished `train_sac` run:
- random: a uniform random policy (D4RL used a randomly initialised one);
- medium: the snapshot whose deterministic evaluation return is closest to
  `medium_fraction` (1/3) of the expert's, rolled out with its *stochastic* policy, as D4RL did;
- medium-replay: the run's replay buffer, in step order, up to that snapshot's step;
- expert: the best-evaluated snapshot (the later one on ties), rolled out the same way;
- medium-expert: medium followed by expert.

Each is written with `write_d4rl` as `<robot>-<name>-v2.hdf5` with the robot's D4RL reference
scores and metadata saying where it came from. Observations are the env's (float32),
`terminals` its `terminated`, `timeouts` its `truncated` (or the cut at the end of a
transition budget). The SAC run is checkpointed under `<out>/<robot>-sac/checkpoints`, so an
interrupted collection resumes, and `<out>/<robot>-sac/summary.json` records the timings.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from dualrl.collect.sac import (
    PolicySnapshot,
    Rollouts,
    SACRun,
    SACRunConfig,
    config_to_dict,
    derived_seed,
    greedy_policy,
    run_policy,
    sampling_policy,
    train_sac,
    uniform_policy,
)
from dualrl.data.d4rl import atomic_path, write_d4rl
from dualrl.data.dataset import Dataset, concatenate
from dualrl.envs.locomotion import get_robot, make_robot_env

DATASET_NAMES = ("random", "medium", "medium-replay", "expert", "medium-expert")
COLLECTOR = "dualrl.collect.sac"


def dataset_path(out_dir: str | os.PathLike[str], robot: str, name: str) -> Path:
    """D4RL's file name, so the data directory resolves tasks like `hopper-medium-v2`."""
    return Path(out_dir) / f"{robot}-{name}-v2.hdf5"


def run_dir(out_dir: str | os.PathLike[str], robot: str) -> Path:
    return Path(out_dir) / f"{robot}-sac"


def check_outputs_free(out_dir: str | os.PathLike[str], robot: str,
                       names: tuple[str, ...] = DATASET_NAMES, overwrite: bool = False) -> None:
    """Refuse (before any training) when a dataset file already exists, unless overwriting."""
    taken = [p for p in (dataset_path(out_dir, robot, n) for n in names) if p.exists()]
    if taken and not overwrite:
        raise FileExistsError(f"{', '.join(map(str, taken))} already exist(s); pass "
                              "overwrite=True (--overwrite) to replace them")
    directories = [p for p in taken if p.is_dir()]
    if directories:
        raise IsADirectoryError(f"{directories[0]}: is a directory, expected a dataset file")


# ------------------------------------------------------------------ snapshot choice
def expert_snapshot(snapshots: list[PolicySnapshot]) -> PolicySnapshot:
    """The best evaluation return; the later snapshot on ties (more trained)."""
    if not snapshots:
        raise ValueError("the SAC run has no policy snapshots")
    return max(reversed(snapshots), key=lambda s: s.eval_return)


def medium_snapshot(snapshots: list[PolicySnapshot], expert_return: float,
                    fraction: float = 1.0 / 3.0) -> PolicySnapshot:
    """The snapshot whose return is closest to `fraction` × the expert's; earliest on ties."""
    if not snapshots:
        raise ValueError("the SAC run has no policy snapshots")
    target = fraction * expert_return
    return min(snapshots, key=lambda s: abs(s.eval_return - target))


# ------------------------------------------------------------------ datasets
def _return_stats(returns: np.ndarray, robot: str) -> dict[str, float]:
    """Mean / std / D4RL score of the episodes that finished (a budget's cut one excluded)."""
    spec = get_robot(robot)
    mean = float(returns.mean())
    return {
        "source_policy_return": mean,
        "source_policy_return_std": float(returns.std()),
        "source_policy_score": 100.0 * (mean - spec.ref_min_score)
        / (spec.ref_max_score - spec.ref_min_score),
        "source_policy_episodes": int(returns.size),
    }


def _to_dataset(rollouts: Rollouts, robot: str, metadata: dict[str, Any]) -> Dataset:
    spec = get_robot(robot)
    ends = rollouts.terminals | rollouts.truncations
    info = {
        **metadata,
        "n_transitions": len(rollouts),
        "n_episodes": int(ends.sum()),
        **_return_stats(rollouts.episode_returns, robot),
    }
    return Dataset(
        observations=rollouts.observations,
        actions=rollouts.actions,
        rewards=rollouts.rewards,
        next_observations=rollouts.next_observations,
        terminals=rollouts.terminals,
        timeouts=rollouts.truncations,
        episode_ends=ends,
        ref_min_score=spec.ref_min_score,
        ref_max_score=spec.ref_max_score,
        metadata=info,
    )


def build_behaviour_datasets(
    run: SACRun,
    robot: str,
    make_env: Callable[[], Any] | None = None,
    names: tuple[str, ...] = DATASET_NAMES,
    log: Callable[[str], None] | None = None,
) -> dict[str, Dataset]:
    """The D4RL-style datasets of `run` (see the module docstring), in `names` order."""
    unknown = [n for n in names if n not in DATASET_NAMES]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; valid: {', '.join(DATASET_NAMES)}")
    make_env = make_env or (lambda: make_robot_env(robot))
    cfg = run.config
    expert = expert_snapshot(run.snapshots)
    medium = medium_snapshot(run.snapshots, expert.eval_return, cfg.medium_fraction)
    common = {
        "collector": COLLECTOR,
        "env_id": run.env_id,
        "robot": robot,
        "seed": run.seed,
        "preset": cfg.preset,
        "sac_steps": cfg.total_steps,
        "sac_train_seconds": run.train_seconds,
        "expert_eval_return": expert.eval_return,
        "sac_config": config_to_dict(cfg),
    }
    mode = "stochastic" if cfg.stochastic_datasets else "deterministic"

    def snapshot_info(snapshot: PolicySnapshot) -> dict[str, Any]:
        return {"snapshot_step": snapshot.step, "snapshot_eval_return": snapshot.eval_return}

    def rollout(snapshot: PolicySnapshot, salt: int) -> Rollouts:
        key = jax.random.PRNGKey(derived_seed(run.seed, 2, salt))
        if cfg.stochastic_datasets:
            policy = sampling_policy(run.learner, snapshot.actor_params, run.scaler, key)
        else:
            policy = greedy_policy(run.learner, snapshot.actor_params, run.scaler)
        return run_policy(make_env(), policy, seed=derived_seed(run.seed, 3, salt),
                          transitions=cfg.dataset_size)

    built: dict[str, Dataset] = {}
    finished_returns: dict[str, np.ndarray] = {}

    def from_rollouts(name: str, rollouts: Rollouts, info: dict[str, Any]) -> Dataset:
        finished_returns[name] = rollouts.episode_returns
        return _to_dataset(rollouts, robot, {**common, "dataset": name, **info})

    def get(name: str) -> Dataset:
        if name in built:
            return built[name]
        start = time.perf_counter()
        if name == "random":
            env = make_env()
            policy = uniform_policy(env.action_space, derived_seed(run.seed, 4))
            data = from_rollouts(name, run_policy(env, policy, seed=derived_seed(run.seed, 3, 0),
                                                  transitions=cfg.dataset_size),
                                 {"policy": "uniform random", "snapshot_step": None})
        elif name == "medium":
            data = from_rollouts(name, rollout(medium, 1),
                                 {**snapshot_info(medium), "policy": f"SAC snapshot, {mode}"})
        elif name == "expert":
            data = from_rollouts(name, rollout(expert, 2),
                                 {**snapshot_info(expert), "policy": f"SAC snapshot, {mode}"})
        elif name == "medium-replay":
            data = from_rollouts(name, run.log.head(medium.step),
                                 {**snapshot_info(medium),
                                  "policy": "SAC replay buffer up to the medium snapshot"})
        else:  # medium-expert
            parts = [get("medium"), get("expert")]
            data = concatenate(parts)
            returns = np.concatenate([finished_returns["medium"], finished_returns["expert"]])
            data.metadata = {
                **common, "dataset": name, "policy": f"medium + expert SAC snapshots, {mode}",
                "medium_snapshot_step": medium.step, "expert_snapshot_step": expert.step,
                "snapshot_step": None, "snapshot_eval_return": None,
                "n_medium": len(parts[0]), "n_expert": len(parts[1]),
                "n_transitions": len(data), "n_episodes": data.num_episodes,
                **_return_stats(returns, robot),
            }
        data.metadata["collect_seconds"] = time.perf_counter() - start
        built[name] = data
        if log is not None:
            log(f"[{robot}] {name}: {len(data)} transitions, {data.num_episodes} episodes, "
                f"return {data.metadata['source_policy_return']:.1f}")
        return data

    return {name: get(name) for name in names}


def write_behaviour_datasets(datasets: dict[str, Dataset], out_dir: str | os.PathLike[str],
                             robot: str, overwrite: bool = False) -> dict[str, Path]:
    """Write each as `<out_dir>/<robot>-<name>-v2.hdf5` (atomic; no overwrite by default)."""
    check_outputs_free(out_dir, robot, tuple(datasets), overwrite)
    return {name: write_d4rl(data, dataset_path(out_dir, robot, name), overwrite=overwrite)
            for name, data in datasets.items()}


# ------------------------------------------------------------------ the whole collection
@dataclass
class CollectionReport:
    robot: str
    out_dir: Path
    paths: dict[str, Path]
    summary: dict[str, Any] = field(default_factory=dict)  # also in <robot>-sac/summary.json


def collect_sac_datasets(
    robot: str,
    config: SACRunConfig,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    overwrite: bool = False,
    names: tuple[str, ...] = DATASET_NAMES,
    log: Callable[[str], None] | None = None,
) -> CollectionReport:
    """Train SAC on `robot` (resuming its checkpoint if any) and write its datasets.

    Existing dataset files are refused before training unless `overwrite`; a checkpoint of
    a different run (other config or seed) is an error unless `overwrite`, which restarts.
    """
    spec = get_robot(robot)
    out_dir = Path(out_dir)
    check_outputs_free(out_dir, robot, names, overwrite)
    start = time.perf_counter()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    def progress(snapshot: PolicySnapshot, metrics: dict[str, float]) -> None:
        if log is not None:
            log(f"[{robot}] step {snapshot.step}/{config.total_steps}: eval return "
                f"{snapshot.eval_return:.1f}, temperature {metrics.get('temperature', 1.0):.3f}, "
                f"{metrics['seconds']:.0f} s")

    run = train_sac(lambda: make_robot_env(robot), config, seed,
                    checkpoint_dir=run_dir(out_dir, robot) / "checkpoints",
                    restart_mismatched=overwrite, on_snapshot=progress)
    trained = time.perf_counter()
    datasets = build_behaviour_datasets(run, robot, names=names, log=log)
    built = time.perf_counter()
    paths = write_behaviour_datasets(datasets, out_dir, robot, overwrite=overwrite)
    done = time.perf_counter()

    expert = expert_snapshot(run.snapshots)
    summary: dict[str, Any] = {
        "robot": robot,
        "env_id": spec.env_id,
        "preset": config.preset,
        "seed": seed,
        "sac_steps": config.total_steps,
        "resumed_at_step": run.resumed_at,
        "seconds": {
            "total": done - start,
            "sac_train_this_session": trained - start,
            "sac_train_all_sessions": run.train_seconds,
            "datasets_collect": built - trained,
            "datasets_write": done - built,
        },
        "expert_eval_return": expert.eval_return,
        "snapshots": [{"step": s.step, "eval_return": s.eval_return} for s in run.snapshots],
        "datasets": {
            name: {
                "path": str(paths[name]),
                "n_transitions": len(data),
                "n_episodes": data.num_episodes,
                "source_policy_return": data.metadata["source_policy_return"],
                "source_policy_score": data.metadata["source_policy_score"],
                "snapshot_step": data.metadata.get("snapshot_step"),
                "file_bytes": paths[name].stat().st_size,
            }
            for name, data in datasets.items()
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "jax_backend": jax.default_backend(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "config": config_to_dict(config),
    }
    summary_path = run_dir(out_dir, robot) / "summary.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(summary_path, overwrite=True, suffix=".json.tmp") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return CollectionReport(robot=robot, out_dir=out_dir, paths=paths, summary=summary)
