"""The `dualrl` command: one-line errors (exit 2), run directories, collect/info, --resume.

Everything runs in-process through `dualrl.cli.main`, except one test that SIGKILLs a real
`python -m dualrl.cli train` process half-way and resumes its run directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from dualrl.algos.iql import IQLConfig
from dualrl.cli import main
from dualrl.config import config_from_dict
from dualrl.data import load_dataset, write_d4rl, write_minari
from dualrl.flags import build_train_config

TINY = [
    "--offline-steps", "200", "--online-steps", "100", "--eval-every", "100",
    "--eval-episodes", "2", "--scan-chunk", "100", "--batch-size", "32",
    "--iql.hidden", "16,16", "--env.map", "4x4", "--env.data-episodes", "50",
    "--progress", "false",
]
SUMMARY_KEYS = {
    "task", "algo", "seed", "preset", "offline_steps", "online_steps", "wall_seconds",
    "offline_score", "offline_data_env_score", "online_mean_score", "final_score",
    "best_score", "num_evaluations",
}
TABLE_HEADER = ("algo", "task", "seed", "offline_score", "online_mean_score", "final_score")


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()  # drop anything printed before
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def error_line(rc: int, out: str, err: str) -> str:
    """Exit status 2, nothing on stdout, exactly one line on stderr."""
    assert rc == 2, (rc, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under `root` (or `root` itself): content digest and mtime."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in files
    }


def read_records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def write_raw_d4rl(path: Path, obs_dim: int = 3, act_dim: int = 2, n_episodes: int = 4,
                   length: int = 5, drop: tuple[str, ...] = (), **replace: np.ndarray) -> Path:
    """A D4RL-style file written directly with h5py, as other tools (D4RL itself) write them."""
    rng = np.random.default_rng(0)
    obs, nxt, term, tout = [], [], [], []
    for e in range(n_episodes):
        states = rng.normal(size=(length + 1, obs_dim)).astype(np.float32)
        obs.append(states[:-1])
        nxt.append(states[1:])
        flags = np.zeros(length, bool), np.zeros(length, bool)
        flags[e % 2][-1] = True  # even episodes end terminal, odd ones by time-out
        term.append(flags[0])
        tout.append(flags[1])
    n = n_episodes * length
    arrays = {
        "observations": np.concatenate(obs),
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": np.concatenate(term),
        "timeouts": np.concatenate(tout),
        "next_observations": np.concatenate(nxt),
    }
    arrays.update(replace)
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if key not in drop:
                f.create_dataset(key, data=value)
        f.create_dataset("infos/qpos", data=np.zeros((n, 2), np.float32))
        f["metadata/algorithm"] = "SAC"
    return path


@pytest.fixture(scope="module")
def fl_4x4_file(tmp_path_factory) -> Path:
    """A valid 4x4 Frozen-Lake dataset in D4RL format."""
    from dualrl.collect.qlearning import collect_qlearning
    from dualrl.envs.frozenlake import FrozenLakeShiftEnv

    dataset = collect_qlearning(FrozenLakeShiftEnv("4x4", slip=0.0), n_episodes=60, seed=0)
    return write_d4rl(dataset, tmp_path_factory.mktemp("data") / "fl4x4.hdf5")


# ----------------------------------------------------------------------- user errors
USER_ERRORS = [
    (["train", "--task", "nope"], ["'nope'", "valid tasks", "frozenlake-shift",
                                   "frozenlake-noshift"]),
    (["train", "--algo", "nope"], ["'nope'", "valid algos", "iql"]),
    (["train", "--preset", "huge"], ["'huge'", "quick", "cpu", "paper"]),
    (["train", "--bogus", "1"], ["'--bogus'", "valid options", "--offline-steps",
                                 "--iql.expectile", "--env.slip-online", "--task"]),
    (["train", "--offline-steps", "abc"], ["--offline-steps", "expected int", "'abc'"]),
    (["train", "--iql.hidden", "16,x"], ["--iql.hidden", "expected int", "'x'"]),
    (["train", "--progress", "maybe"], ["--progress", "true/false", "'maybe'"]),
    (["train", "--online-ratio", "lots"], ["--online-ratio", "expected float"]),
    (["train", "--offline-steps"], ["--offline-steps", "needs a value"]),
    (["train", "--seed", "x"], ["--seed", "'x'"]),
    (["train", "--env.nope", "1"], ["'--env.nope'", "--env.map", "--env.slip-online"]),
    (["train", "--iql.nope", "1"], ["'--iql.nope'", "--iql.expectile"]),
    (["train", "--env.map", "5x5"], ["5x5", "4x4"]),
    (["train", "--env.slip-online", "1.5"], ["slip", "1.5"]),
    (["train", "--env.slippery", "rows:9-12"], ["rows:9-12"]),
    (["train", "--eval-every", "0"], ["--eval-every", ">= 1"]),
    (["train", "--online-ratio", "1.5"], ["--online-ratio", "[0, 1]"]),
    (["train", "--resume"], ["--resume", "--out"]),
    (["frobnicate"], ["'frobnicate'", "valid commands", "train", "collect", "info"]),
    (["collect"], ["valid collectors", "frozenlake"]),
    (["collect", "frozenlake", "--slip", "2", "--out", "x.hdf5"], ["slip", "2"]),
    (["collect", "frozenlake", "--episodes", "0", "--out", "x.hdf5"], ["episodes", "0"]),
    (["collect", "frozenlake", "--map", "4x4"], ["--out"]),
    (["info"], ["path"]),
    (["bench", "nope"], ["valid benchmarks", "throughput"]),
]


@pytest.mark.parametrize("argv, expected", USER_ERRORS,
                         ids=[" ".join(argv) for argv, _ in USER_ERRORS])
def test_user_errors_are_one_line_exit_2(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = error_line(*run_cli(capsys, *argv))
    for text in expected:
        assert text in line, (text, line)
    assert list(tmp_path.iterdir()) == []  # a failed command writes nothing


def test_scan_chunk_zero_is_rejected_before_the_loop_could_hang():
    from dualrl.flags import ConfigError

    with pytest.raises(ConfigError, match="scan_chunk"):
        build_train_config([*TINY, "--scan-chunk", "0"])


def test_train_help_lists_every_config_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--offline-steps", "--online-ratio", "--iql.expectile", "--iql.hidden",
                 "--env.slip-online", "--env.map", "--resume"):
        assert flag in out


def test_overrides_parse_to_typed_config():
    config, known = build_train_config(
        ["--task", "frozenlake-noshift", "--preset", "quick", "--online-ratio", "none",
         "--iql.hidden", "8,4", "--env.slippery", "rows:1-2", "--seed", "5"]
    )
    assert config.loop.online_ratio is None
    assert config.loop.offline_steps == 10_000  # from the quick preset
    assert config.agent.hidden == (8, 4) and config.agent.expectile == 0.7
    assert config.env == {"data_episodes": 1_000, "slippery": "rows:1-2"}
    assert (config.task, config.seed, known.out, known.resume) == ("frozenlake-noshift", 5,
                                                                    None, False)


# --------------------------------------------------------------------------- train
def test_train_run_directory_overwrite_refusal_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--task", "frozenlake-shift", "--seed", "3", *TINY,
            "--env.slip-online", "0.5", "--iql.expectile", "0.8", "--online-ratio", "0.5",
            "--out", out]
    rc, stdout, err = run_cli(capsys, *argv)
    assert rc == 0, err
    assert all(col in stdout for col in TABLE_HEADER) and "frozenlake-shift" in stdout
    assert f"run directory: {out}" in stdout
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoints/LATEST"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "final" / "meta.json").is_file()

    config = json.loads((out / "config.json").read_text())
    assert (config["task"], config["algo"], config["seed"], config["preset"]) == (
        "frozenlake-shift", "iql", 3, "cpu")
    assert config["dataset"] is None
    loop, agent, env = config["loop"], config["agent"], config["env"]
    assert loop["offline_steps"] == 200 and type(loop["offline_steps"]) is int
    assert loop["online_ratio"] == 0.5 and type(loop["online_ratio"]) is float
    assert loop["progress"] is False and loop["batch_size"] == 32
    assert agent["expectile"] == 0.8 and type(agent["expectile"]) is float
    assert agent["hidden"] == [16, 16]
    assert agent["beta"] == 100.0  # from the cpu preset, not overridden
    assert loop["utd"] == 2 and loop["explore_epsilon"] == 0.1  # likewise
    assert env == {"obs": "onehot", "map": "4x4", "slip_online": 0.5, "data_episodes": 50}
    assert type(env["slip_online"]) is float and type(env["data_episodes"]) is int
    assert config_from_dict(config, IQLConfig).agent.hidden == (16, 16)

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["task"], summary["seed"], summary["num_evaluations"]) == (
        "frozenlake-shift", 3, 4)
    records = read_records(out)
    assert [(r["phase"], r["step"]) for r in records] == [
        ("offline", 0), ("offline", 100), ("offline", 200), ("online", 100)]

    # The same command again: refused, nothing touched.
    before = snapshot(out)
    line = error_line(*run_cli(capsys, *argv))
    assert str(out) in line and "--resume" in line
    assert snapshot(out) == before

    # --resume on a finished run: completes at once, same results, prints the table.
    rc, stdout, err = run_cli(capsys, "train", "--out", out, "--resume")
    assert rc == 0, err
    assert all(col in stdout for col in TABLE_HEADER) and "frozenlake-shift" in stdout
    assert read_records(out) == records
    resumed = json.loads((out / "summary.json").read_text())
    for key in SUMMARY_KEYS - {"wall_seconds"}:
        assert resumed[key] == summary[key], key


@pytest.mark.parametrize("exists", [True, False])
def test_resume_without_a_run(tmp_path, capsys, exists):
    out = tmp_path / "nothing-here"
    if exists:
        out.mkdir()
    line = error_line(*run_cli(capsys, "train", "--out", out, "--resume"))
    assert str(out) in line and "no run to resume" in line
    assert out.exists() == exists
    if exists:
        assert list(out.iterdir()) == []


def test_train_on_a_dataset_file(tmp_path, capsys, fl_4x4_file):
    out = tmp_path / "run"
    rc, stdout, err = run_cli(capsys, "train", "--task", "frozenlake-noshift",
                              "--dataset", fl_4x4_file, *TINY, "--online-ratio", "none",
                              "--env.obs", "coords", "--out", out)
    assert rc == 0, err
    assert "frozenlake-noshift" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == str(fl_4x4_file)
    assert config["loop"]["online_ratio"] is None
    assert config["task"] == "frozenlake-noshift" and config["env"]["map"] == "4x4"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS and summary["task"] == "frozenlake-noshift"


@pytest.mark.parametrize(
    "dims, key", [((3, 4), "observations"), ((2, 3), "actions")], ids=["obs", "act"]
)
def test_train_rejects_a_dataset_that_does_not_fit_the_task(tmp_path, capsys, dims, key):
    path = write_raw_d4rl(tmp_path / "other.hdf5", obs_dim=dims[0], act_dim=dims[1])
    before = snapshot(path)
    out = tmp_path / "run"
    line = error_line(*run_cli(capsys, "train", "--task", "frozenlake-noshift",
                               "--dataset", path, *TINY, "--env.obs", "coords", "--out", out))
    assert str(path) in line and key in line and "frozenlake-noshift" in line
    assert not out.exists()  # no half-made run directory
    assert snapshot(path) == before


# ------------------------------------------------------------------ collect / info
def test_collect_then_info(tmp_path, capsys):
    path = tmp_path / "fl.hdf5"
    collect = ["collect", "frozenlake", "--slip", "0.1", "--episodes", "50", "--map", "4x4"]
    rc, out, err = run_cli(capsys, *collect, "--out", path)
    assert rc == 0, err
    assert path.is_file() and str(path) in out and "50 episodes" in out
    dataset = load_dataset(path)
    assert dataset.num_episodes == 50 and (dataset.obs_dim, dataset.act_dim) == (2, 4)

    rc, out, err = run_cli(capsys, "info", path)
    assert rc == 0, err
    assert "format:        d4rl" in out
    assert f"transitions:   {len(dataset):,}" in out
    assert "episodes:      50" in out
    assert "obs_dim:       2" in out and "act_dim:       4" in out

    # An existing file is never replaced without --overwrite.
    before = snapshot(path)
    line = error_line(*run_cli(capsys, "collect", "frozenlake", "--slip", "0.3",
                               "--episodes", "20", "--map", "4x4", "--out", path))
    assert str(path) in line and "overwrite" in line
    assert snapshot(path) == before

    rc, out, err = run_cli(capsys, "collect", "frozenlake", "--slip", "0.3", "--episodes",
                           "20", "--map", "4x4", "--out", path, "--overwrite")
    assert rc == 0, err
    assert load_dataset(path).num_episodes == 20

    # .npz: same collector settings, same data.
    npz = tmp_path / "fl.npz"
    rc, out, err = run_cli(capsys, *collect, "--out", npz)
    assert rc == 0, err
    again = load_dataset(npz)
    for key, arr in dataset.arrays().items():
        np.testing.assert_array_equal(arr, again.arrays()[key], err_msg=key)
    rc, out, err = run_cli(capsys, "info", npz)
    assert rc == 0 and "format:        npz" in out and f"transitions:   {len(dataset):,}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fl.hdf5", "fl.npz"]  # no temp files


def test_info_on_a_minari_folder(tmp_path, capsys, small_dataset):
    write_minari(small_dataset, tmp_path / "mini")
    for where in (tmp_path / "mini", tmp_path / "mini" / "data"):
        rc, out, err = run_cli(capsys, "info", where)
        assert rc == 0, err
        assert "format:        minari" in out
        assert f"transitions:   {len(small_dataset):,}" in out
        assert f"episodes:      {small_dataset.num_episodes:,}" in out
        assert "obs_dim:       2" in out and "act_dim:       4" in out


def test_info_on_a_d4rl_file_written_by_another_tool(tmp_path, capsys):
    path = write_raw_d4rl(tmp_path / "other.hdf5")
    before = snapshot(path)
    rc, out, err = run_cli(capsys, "info", path)
    assert rc == 0, err
    for text in ("format:        d4rl", "transitions:   20", "episodes:      4",
                 "obs_dim:       3", "act_dim:       2", "terminals:     2", "timeouts:      2",
                 "episode len:   mean 5.0"):
        assert text in out, text
    assert snapshot(path) == before


def _nan_observations() -> dict[str, np.ndarray]:
    obs = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
    obs[7, 1] = np.nan
    return {"observations": obs}


def _empty() -> dict[str, np.ndarray]:
    return {
        "observations": np.zeros((0, 3), np.float32),
        "actions": np.zeros((0, 2), np.float32),
        "rewards": np.zeros(0, np.float32),
        "terminals": np.zeros(0, bool),
        "timeouts": np.zeros(0, bool),
        "next_observations": np.zeros((0, 3), np.float32),
    }


BROKEN = {
    "missing-rewards": (lambda p: write_raw_d4rl(p, drop=("rewards",)),
                        ["'rewards'", "missing"]),
    "nan-observations": (lambda p: write_raw_d4rl(p, **_nan_observations()),
                         ["'observations'", "non-finite", "row 7"]),
    "length-mismatch": (lambda p: write_raw_d4rl(p, rewards=np.zeros(19, np.float32)),
                        ["'rewards'", "19", "20", "length mismatch"]),
    "empty": (lambda p: write_raw_d4rl(p, **_empty()), ["'observations'", "empty"]),
    "random-bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
                     ["not an HDF5 file"]),
    "nonexistent": (lambda p: None, ["no such file"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_info_on_broken_files(tmp_path, capsys, case):
    make, expected = BROKEN[case]
    path = tmp_path / f"{case}.hdf5"
    make(path)
    before = snapshot(path) if path.exists() else None
    line = error_line(*run_cli(capsys, "info", path))
    assert line.startswith("dualrl info: error:")
    assert str(path) in line
    for text in expected:
        assert text in line, (text, line)
    if before is None:
        assert not path.exists()
    else:
        assert snapshot(path) == before


# ---------------------------------------------------------- a real process, SIGKILLed
def test_sigkill_mid_run_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    budget = ["--offline-steps", "500", "--online-steps", "750", "--checkpoint-every", "250",
              "--eval-every", "250", "--scan-chunk", "250", "--eval-episodes", "2",
              "--batch-size", "32", "--iql.hidden", "16,16", "--env.map", "4x4",
              "--env.data-episodes", "50", "--progress", "false", "--seed", "1"]
    cmd = [sys.executable, "-m", "dualrl.cli", "train", *budget, "--out", str(out)]
    latest = out / "checkpoints" / "LATEST"
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "JAX_PLATFORMS": "cpu"})
    try:
        # Wait for the first ONLINE checkpoint (the offline one comes a moment earlier), so
        # the kill lands mid-way with an online buffer to restore.
        deadline = time.monotonic() + 180
        while not (latest.exists() and latest.read_text().startswith("online-")):
            if proc.poll() is not None:
                pytest.fail(f"run ended (rc {proc.returncode}) before it could be killed:\n"
                            f"{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no online checkpoint after 180 s:\n{log.read_text()}")
            time.sleep(0.02)
        # A second writer is refused at once, naming the live process that holds the run.
        for argv in (["train", "--out", out, "--resume"], ["train", *budget, "--out", out]):
            line = error_line(*run_cli(capsys, *argv))
            assert f"PID {proc.pid}" in line and str(out) in line
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert not (out / "summary.json").exists()
    tag = latest.read_text().strip()
    checkpoint_records = json.loads(
        (out / "checkpoints" / tag / "meta.json").read_text())["progress"]["records"]
    killed_lines = (out / "metrics.jsonl").read_text().splitlines()
    n = len(checkpoint_records)
    assert n >= 4  # three offline evaluations and at least the first online one

    rc, stdout, err = run_cli(capsys, "train", "--out", out, "--resume")
    assert rc == 0, err
    assert all(col in stdout for col in TABLE_HEADER)

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["offline_steps"], summary["online_steps"]) == (500, 750)
    assert summary["seed"] == 1
    lines = (out / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one valid JSON object
    assert all(isinstance(r, dict) for r in records)
    totals = [r["total_step"] for r in records]
    assert totals == sorted(set(totals))  # strictly increasing: no duplicate records
    assert [(r["phase"], r["step"]) for r in records] == [
        ("offline", 0), ("offline", 250), ("offline", 500),
        ("online", 250), ("online", 500), ("online", 750),
    ]
    assert summary["num_evaluations"] == len(records) == 6
    # The run continued from the checkpoint rather than starting over: the records it held
    # (wall-clock times included) are kept verbatim.
    assert records[:n] == checkpoint_records
    assert lines[:n] == killed_lines[:n]
    assert latest.read_text().strip() == "final"


# ------------------------------------------------------------------------- demo
@pytest.mark.slow
def test_demo_runs_end_to_end_at_the_quick_preset(tmp_path, capsys):
    """The README's main job, at the quick preset with a tiny budget: both runs side by
    side (one process each), the table, the learning curves with the DP optimum; then
    `--resume` on the finished demo, in this process (`--jobs 1`)."""
    out = tmp_path / "demo"
    argv = ["demo", "--preset", "quick", "--offline-steps", "200", "--online-steps", "200",
            "--out", out]
    rc, stdout, err = run_cli(capsys, *argv, "--jobs", "2")
    assert rc == 0, err
    assert "side by side (2 processes)" in stdout
    assert "frozenlake-shift" in stdout and all(col in stdout for col in TABLE_HEADER)
    assert (out / "learning_curves.png").stat().st_size > 0
    for algo in ("dual", "iql"):
        summary = json.loads((out / algo / "summary.json").read_text())
        assert (summary["algo"], summary["online_steps"]) == (algo, 200)
        assert "dp_success_optimal" in read_records(out / algo)[-1]
    line = error_line(*run_cli(capsys, *argv))  # a second demo into it: refused
    assert "--resume" in line
    assert "--jobs must be at least 1" in error_line(*run_cli(capsys, *argv, "--jobs", "0"))
    rc, stdout, err = run_cli(capsys, *argv, "--resume", "--jobs", "1")
    assert rc == 0, err
    assert "side by side" not in stdout and all(col in stdout for col in TABLE_HEADER)
