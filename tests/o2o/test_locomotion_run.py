"""End to end on continuous-control tasks (hopper with an ODRL shift, maze2d): data found by
name in $DUALRL_DATA, the offline phase on the base robot, the online phase on the shifted
one, rewards normalised."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dualrl.envs as envs
from dualrl.cli import main
from dualrl.collect.waypoints import collect_maze
from dualrl.data import write_d4rl
from dualrl.data.dataset import Dataset


def random_hopper_data(n_steps: int, seed: int = 0) -> Dataset:
    env = envs.make("hopper-medium-v2", "offline")
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in ("obs", "act", "rew", "next", "term", "tout")}
    obs, _ = env.reset(seed=seed)
    for t in range(n_steps):
        act = rng.uniform(-1, 1, 3).astype(np.float32)
        nxt, rew, term, trunc, _ = env.step(act)
        trunc = trunc or t == n_steps - 1
        for k, v in zip(cols, (obs, act, rew, nxt, term, trunc), strict=True):
            cols[k].append(v)
        obs = env.reset()[0] if term or trunc else nxt
    return Dataset(observations=np.array(cols["obs"]), actions=np.array(cols["act"]),
                   rewards=np.array(cols["rew"]), next_observations=np.array(cols["next"]),
                   terminals=np.array(cols["term"]), timeouts=np.array(cols["tout"]),
                   ref_min_score=-20.272305, ref_max_score=3234.3)


def train_tiny(task: str, algo: str, out, capsys, online_steps: int = 200) -> tuple[dict, dict]:
    """`dualrl train` at a tiny budget on a task whose data is in $DUALRL_DATA: (config,
    summary) of the run."""
    tiny = ["--offline-steps", "200", "--online-steps", str(online_steps), "--eval-every",
            str(online_steps), "--eval-episodes", "1", "--scan-chunk", "100",
            "--progress", "false"]
    if algo == "dual":
        tiny += ["--dual.planner-steps", "50", "--dual.distill-steps-per-round", "5",
                 "--dual.teacher-steps", "4",
                 "--dual.fit-samples", "500", "--dual.refit-every", "100"]
    rc = main(["train", "--task", task, "--algo", algo, "--preset", "quick", *tiny,
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert np.isfinite(summary["online_mean_score"]) and summary["num_evaluations"] >= 2
    return config, summary


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["iql", "dual", "calql", "so2", "dacer"])
def test_train_on_a_shifted_hopper_task_from_the_data_directory(tmp_path, monkeypatch, capsys,
                                                                algo):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_d4rl(random_hopper_data(600), data_dir / "hopper-medium-v2.hdf5")
    monkeypatch.setenv("DUALRL_DATA", str(data_dir))
    config, _ = train_tiny("hopper-friction-2.0", algo, tmp_path / "run", capsys)
    assert config["loop"]["reward_normalization"] == "returns"
    assert config["env"] == {} and config["task"] == "hopper-friction-2.0"


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["iql", "dual"])
def test_train_maze2d_umaze_from_collected_data(tmp_path, monkeypatch, capsys, algo):
    """maze2d: waypoint-controller data under the task's D4RL name, trained on by name."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_d4rl(collect_maze("umaze", n_steps=3000, seed=0), data_dir / "maze2d-umaze-v1.hdf5")
    monkeypatch.setenv("DUALRL_DATA", str(data_dir))
    config, _ = train_tiny("maze2d-umaze-v1", algo, tmp_path / "run", capsys, online_steps=300)
    assert config["agent"]["expectile"] == 0.7


def test_reward_normalization_by_the_spread_of_episode_returns():
    from dualrl.config import LoopConfig
    from dualrl.o2o.loop import reward_transform

    data = random_hopper_data(300)
    returns = data.episode_returns()
    spread = returns.max() - returns.min()
    assert reward_transform(LoopConfig(), data) == (1.0, 0.0)
    scale, bias = reward_transform(LoopConfig(reward_normalization="returns"), data)
    assert scale == pytest.approx(1000.0 / spread) and bias == 0.0
    scale, bias = reward_transform(
        LoopConfig(reward_normalization="returns", reward_scale=2.0, reward_bias=-1.0), data)
    new = np.array([(data.rewards[s] * 2.0 - 1.0).sum() for s in data.episode_slices()])
    assert scale == pytest.approx(2000.0 / (new.max() - new.min()))
    assert bias == pytest.approx(-1000.0 / (new.max() - new.min()))
    with pytest.raises(ValueError, match="reward_normalization"):
        LoopConfig(reward_normalization="minmax")
