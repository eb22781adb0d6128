"""End to end on maze2d: waypoint-controller data written under the task's D4RL name in
$DUALRL_DATA, then trained on by name (the long-horizon task that runs on a CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dualrl.cli import main
from dualrl.collect.waypoints import collect_maze
from dualrl.data import write_d4rl


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["iql", "dual"])
def test_train_maze2d_umaze_from_collected_data(tmp_path, monkeypatch, capsys, algo):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_d4rl(collect_maze("umaze", n_steps=3000, seed=0), data_dir / "maze2d-umaze-v1.hdf5")
    monkeypatch.setenv("DUALRL_DATA", str(data_dir))
    out = tmp_path / "run"
    tiny = ["--offline-steps", "200", "--online-steps", "300", "--eval-every", "300",
            "--eval-episodes", "1", "--scan-chunk", "100", "--progress", "false"]
    if algo == "dual":
        tiny += ["--dual.planner-steps", "50", "--dual.distill-steps-per-round", "5",
                 "--dual.fit-samples", "500", "--dual.refit-every", "100"]
    rc = main(["train", "--task", "maze2d-umaze-v1", "--algo", algo, "--preset", "quick",
               *tiny, "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["agent"]["expectile"] == 0.7
    summary = json.loads((out / "summary.json").read_text())
    assert np.isfinite(summary["online_mean_score"]) and summary["num_evaluations"] >= 2
