"""Minari dataset IDs and Minari-native tasks, on a dataset root written by the real minari
package (tests/data/fixtures/minari_root, made by its make_fixtures.py): IDs resolved from
MINARI_DATASETS_PATH, the newest version, a missing ID, a locomotion task's Minari twin and
its reference scores, and a dict-observation maze dataset trained end to end by its ID."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dualrl.cli import main
from dualrl.data import load_dataset
from dualrl.data.dataset import DatasetError
from dualrl.data.io import dataset_location
from dualrl.data.minari import local_minari_ids, resolve_minari_id
from dualrl.envs import find_dataset_file, get_task
from dualrl.envs.registry import scored_by_data

ROOT = Path(__file__).parent / "fixtures" / "minari_root"


@pytest.fixture
def minari_root(monkeypatch, tmp_path):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(ROOT))
    monkeypatch.setenv("DUALRL_DATA", str(tmp_path / "empty"))  # no D4RL files anywhere
    return ROOT


def test_ids_present_under_the_root(minari_root):
    assert local_minari_ids() == ["D4RL/pointmaze/umaze-v2", "dualrl-ext/pendulum-v0",
                                  "dualrl-ext/pendulum-v1", "mujoco/hopper/medium-v0"]


def test_an_id_is_resolved_from_the_minari_root(minari_root, capsys):
    assert main(["info", "mujoco/hopper/medium-v0"]) == 0
    out = capsys.readouterr().out
    assert "minari_root/mujoco/hopper/medium-v0" in out and "format:        minari" in out
    data = load_dataset("mujoco/hopper/medium-v0")
    assert data.obs_dim == 11 and data.act_dim == 3 and data.ref_max_score == 3000.0
    assert dataset_location("mujoco/hopper/medium-v0") == str(
        (ROOT / "mujoco/hopper/medium-v0").resolve())


def test_without_a_version_the_newest_is_chosen(minari_root):
    assert resolve_minari_id("dualrl-ext/pendulum") == ROOT / "dualrl-ext/pendulum-v1"
    assert resolve_minari_id("dualrl-ext/pendulum-v0") == ROOT / "dualrl-ext/pendulum-v0"
    assert len(load_dataset("dualrl-ext/pendulum")) == 60  # v1: 2 episodes of 30 steps
    assert len(load_dataset("dualrl-ext/pendulum-v0")) == 40


def test_a_missing_id_lists_what_exists_and_how_to_get_it(minari_root, capsys):
    assert main(["info", "mujoco/hopper/expert-v0"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mujoco/hopper/expert-v0" in err
    assert "present: D4RL/pointmaze/umaze-v2, dualrl-ext/pendulum-v0" in err
    assert "`minari download mujoco/hopper/expert-v0`" in err
    with pytest.raises(DatasetError, match="dualrl-ext/pendulum-v7"):
        resolve_minari_id("dualrl-ext/pendulum-v7")


def test_a_locomotion_task_finds_its_minari_twin_and_its_reference_scores(minari_root):
    spec = get_task("hopper-medium-v2")
    assert find_dataset_file(spec) == ROOT / "mujoco/hopper/medium-v0"
    data = load_dataset(find_dataset_file(spec))
    scored = scored_by_data(spec, data, task_data=True)
    assert (scored.ref_min_score, scored.ref_max_score) == (-20.0, 3000.0)  # Minari's
    assert scored_by_data(spec, data, task_data=False) is spec  # --dataset: the task's refs
    shifted = get_task("hopper-friction-2.0")  # same data, its ODRL references kept
    assert find_dataset_file(shifted) == ROOT / "mujoco/hopper/medium-v0"
    assert scored_by_data(shifted, data, task_data=True) is shifted
    with pytest.raises(FileNotFoundError, match="mujoco/hopper/expert"):
        find_dataset_file(get_task("hopper-expert-v2"))
    with pytest.raises(FileNotFoundError) as info:
        find_dataset_file(get_task("hopper-random-v2"))  # no Minari twin: not mentioned
    assert "Minari's" not in str(info.value)


@pytest.mark.slow
def test_a_dict_observation_maze_dataset_trains_by_its_id(minari_root, tmp_path, capsys):
    """`--task D4RL/pointmaze/umaze-v2`: the environment from the metadata, dict observations
    flattened as the reader flattens them, scored with Minari's references."""
    spec = get_task("D4RL/pointmaze/umaze-v2")
    assert spec.family == "maze2d" and (spec.ref_min_score, spec.ref_max_score) == (0.0, 100.0)
    env = spec.env_factory(spec.params, "online")
    obs, _ = env.reset(seed=0)
    data = load_dataset("D4RL/pointmaze/umaze-v2")
    assert obs.shape == (data.obs_dim,) == (8,)  # observation (4), achieved, desired goal
    env.close()
    out = tmp_path / "run"
    rc = main(["train", "--task", "D4RL/pointmaze/umaze-v2", "--algo", "iql", "--preset",
               "quick", "--offline-steps", "200", "--online-steps", "200", "--eval-every",
               "200", "--progress", "false", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert np.isfinite(summary["online_mean_score"]) and summary["num_evaluations"] >= 2
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["dataset"]["path"].endswith("D4RL/pointmaze/umaze-v2")
    assert main(["train", "--task", "D4RL/antmaze/umaze-v1", "--algo", "iql",
                 "--out", str(tmp_path / "x")]) != 0
    assert "`minari download D4RL/antmaze/umaze-v1`" in capsys.readouterr().err
