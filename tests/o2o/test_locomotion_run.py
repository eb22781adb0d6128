"""End to end on a MuJoCo task with an ODRL shift: data found by name in $DUALRL_DATA, the
offline phase on the base hopper, the online phase on the shifted one, rewards normalised."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dualrl.envs as envs
from dualrl.cli import main
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


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["iql", "dual"])
def test_train_on_a_shifted_hopper_task_from_the_data_directory(tmp_path, monkeypatch, capsys,
                                                                algo):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_d4rl(random_hopper_data(600), data_dir / "hopper-medium-v2.hdf5")
    monkeypatch.setenv("DUALRL_DATA", str(data_dir))
    out = tmp_path / "run"
    tiny = ["--offline-steps", "200", "--online-steps", "200", "--eval-every", "200",
            "--eval-episodes", "1", "--scan-chunk", "100", "--progress", "false"]
    if algo == "dual":
        tiny += ["--dual.planner-steps", "50", "--dual.distill-steps-per-round", "5",
                 "--dual.fit-samples", "500", "--dual.refit-every", "100"]
    rc = main(["train", "--task", "hopper-friction-2.0", "--algo", algo, "--preset", "quick",
               *tiny, "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["loop"]["reward_normalization"] == "returns"
    assert config["env"] == {} and config["task"] == "hopper-friction-2.0"
    summary = json.loads((out / "summary.json").read_text())
    assert np.isfinite(summary["online_mean_score"]) and summary["num_evaluations"] >= 2


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
