"""Runs you can trust (issue 11): nothing of the user's is touched, one writer per run, every
failure on the run's paths is one line, checkpoints are verified whole, --resume checks its
data and its flags.

Everything goes through `dualrl.cli.main` in-process with a tiny 4x4 Frozen-Lake budget. A
full disk is made by failing `os.write` (the call every run-directory write goes through) for
descriptors under the run directory, a read-only file system by failing `os.mkdir`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dualrl.cli import main
from dualrl.data import load_dataset, write_d4rl
from dualrl.o2o.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dualrl.o2o.rundir import RunDirError

TINY = [
    "--task", "frozenlake-noshift", "--seed", "2",
    "--offline-steps", "200", "--online-steps", "200", "--eval-every", "100",
    "--checkpoint-every", "100", "--eval-episodes", "2", "--scan-chunk", "100",
    "--batch-size", "32", "--iql.hidden", "16,16", "--env.map", "4x4",
    "--env.data-episodes", "50", "--env.obs", "coords", "--progress", "false",
]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(rc: int, out: str, err: str, status: int | None = 2) -> str:
    """A non-zero exit, nothing on stdout, exactly one line on stderr and no traceback."""
    assert rc != 0 and (status is None or rc == status), (rc, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root`: file digests (and folders), so any change shows."""
    entries = {}
    for p in sorted(root.rglob("*")):
        if p.name == ".lock":  # the run's lock: holds the PID of its last holder
            continue
        entries[str(p.relative_to(root))] = (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>")
    return entries


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "wall_seconds"} for x in lines]


def leftovers(run: Path) -> list[str]:
    return [str(p) for p in run.rglob("*") if ".tmp-" in p.name or p.name.startswith(".old-")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[dict]:
    """The uninterrupted run every interrupted-then-resumed one must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return records(out)


# ------------------------------------------------------------- the user's folders
def test_out_into_a_folder_that_is_not_a_run_is_refused_untouched(tmp_path, capsys):
    """The issue's reproduction: a folder with the user's checkpoints/ and metrics.jsonl."""
    d = tmp_path / "d"
    (d / "checkpoints" / "important_model").mkdir(parents=True)
    (d / "checkpoints" / "important_model" / "model.bin").write_text("x\n")
    (d / "metrics.jsonl").write_text("notes\n")
    before = snapshot(d)
    line = one_line(*run_cli(capsys, "train", *TINY, "--out", d))
    assert str(d) in line and "not empty" in line and "config.json" in line
    assert snapshot(d) == before


def test_a_run_that_lost_its_config_is_not_replaced(tmp_path, capsys, reference):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", *TINY, "--out", out)[0] == 0
    (out / "config.json").unlink()
    before = snapshot(out)
    line = one_line(*run_cli(capsys, "train", *TINY, "--out", out))
    assert str(out) in line and "not a dualrl run" in line
    assert snapshot(out) == before


def test_an_empty_folder_becomes_a_run(tmp_path, capsys, reference):
    out = tmp_path / "empty"
    out.mkdir()
    rc, _, err = run_cli(capsys, "train", *TINY, "--out", out)
    assert rc == 0, err
    assert records(out) == reference


def test_out_below_a_file(tmp_path, capsys):
    data = tmp_path / "existing_file.hdf5"
    data.write_bytes(b"precious")
    line = one_line(*run_cli(capsys, "train", *TINY, "--out", data / "run"))
    assert str(data) in line and "not a directory" in line
    assert data.read_bytes() == b"precious"


def test_read_only_file_system(tmp_path, capsys, monkeypatch):
    real_mkdir = os.mkdir

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    out = tmp_path / "ro" / "run"
    line = one_line(*run_cli(capsys, "train", *TINY, "--out", out))
    assert str(out) in line and "Read-only file system" in line
    assert not out.exists()


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    with pytest.raises(RunDirError, match="no run to resume"):
        main(["--debug", "train", "--out", str(tmp_path / "none"), "--resume"])
    monkeypatch.setenv("DUALRL_DEBUG", "1")
    with pytest.raises(RunDirError):
        main(["train", "--out", str(tmp_path / "none"), "--resume"])


def test_clean_up_removes_only_the_runs_own_checkpoints(tmp_path):
    """Pruning and same-tag replacement touch only folders this owner wrote."""
    ckpts = tmp_path / "checkpoints"
    (ckpts / "important_model").mkdir(parents=True)
    (ckpts / "important_model" / "model.bin").write_bytes(b"user")
    state = {"w": np.arange(3.0)}
    save_checkpoint(ckpts, "theirs", state, {}, {}, owner="another-run")
    user_files = {k: v for k, v in snapshot(ckpts).items() if k != "LATEST"}
    for i in range(4):
        save_checkpoint(ckpts, f"step-{i}", state, {}, {"i": i}, keep=2, owner="me")
        time.sleep(0.01)  # distinct mtimes
    assert sorted(p.name for p in ckpts.iterdir() if p.is_dir()) == [
        "important_model", "step-2", "step-3", "theirs"]
    assert {k: v for k, v in snapshot(ckpts).items() if k in user_files} == user_files
    with pytest.raises(CheckpointError, match="not written by this run"):
        save_checkpoint(ckpts, "theirs", state, {}, {}, owner="me")
    with pytest.raises(CheckpointError, match="not written by this run"):
        save_checkpoint(ckpts, "important_model", state, {}, {}, owner="me")
    assert {k: v for k, v in snapshot(ckpts).items() if k in user_files} == user_files
    save_checkpoint(ckpts, "step-3", {"w": np.zeros(3)}, {}, {}, owner="me")  # ours: replaced
    restored, _, _ = load_checkpoint(ckpts / "step-3", state)
    assert np.all(restored["w"] == 0)
    assert leftovers(ckpts) == []


# ----------------------------------------------------------------- one writer
HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from dualrl.o2o.rundir import RunDir
    RunDir(sys.argv[1]).open_existing()
    print("locked", flush=True)
    time.sleep(600)
""")


def test_second_process_is_refused_then_resume_after_the_holder_died(tmp_path, capsys,
                                                                     reference):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", *TINY, "--out", out)[0] == 0
    expected = records(out)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)],
                              stdout=subprocess.PIPE, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    try:
        assert holder.stdout.readline().strip() == b"locked"
        before = snapshot(out)
        line = one_line(*run_cli(capsys, "train", "--out", out, "--resume"))
        assert f"PID {holder.pid}" in line and str(out) in line
        line = one_line(*run_cli(capsys, "train", *TINY, "--out", out))
        assert f"PID {holder.pid}" in line and "already holds a run" in line
        assert snapshot(out) == before
        holder.send_signal(signal.SIGKILL)  # the OS drops its lock
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
    rc, _, err = run_cli(capsys, "train", "--out", out, "--resume")
    assert rc == 0, err
    assert records(out) == expected == reference


# ------------------------------------------------------------------ disk full
class DiskFull:
    """`os.write` fails with ENOSPC for files under `root` once `trigger(path)` says so."""

    def __init__(self, monkeypatch, root: Path, trigger):
        self.root, self.trigger, self.full, self.hits = str(root), trigger, False, 0
        self._write = os.write
        monkeypatch.setattr(os, "write", self)

    def __call__(self, fd, data):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if path.startswith(self.root) and (self.full or self.trigger(path)):
            self.full, self.hits = True, self.hits + 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._write(fd, data)


def _nth_write(matches, n: int):
    """Full from the n-th write to a file whose name `matches` on."""
    seen = {"k": 0}

    def trigger(path: str) -> bool:
        if matches(os.path.basename(path)):
            seen["k"] += 1
        return seen["k"] >= n
    return trigger


FULL_AT = {
    "start": lambda path: True,  # the first write of the run (config.json)
    "checkpoint": lambda path: ".tmp-online-" in path,  # inside an online checkpoint
    # moving LATEST to the 4th checkpoint (pretrained, offline-100, offline-final, online-100)
    "latest": _nth_write(lambda name: name.startswith(".LATEST.tmp-"), 4),
    "metrics": _nth_write(lambda name: name == "metrics.jsonl", 5),  # 5th evaluation record
}


@pytest.mark.parametrize("where", list(FULL_AT))
def test_disk_full_then_resume_reproduces_the_uninterrupted_run(tmp_path, capsys, monkeypatch,
                                                                reference, where):
    out = tmp_path / "run"
    disk = DiskFull(monkeypatch, tmp_path, FULL_AT[where])
    line = one_line(*run_cli(capsys, "train", *TINY, "--out", out), status=1)
    assert disk.hits >= 1
    assert "No space left on device" in line and str(out) in line
    assert leftovers(tmp_path) == []
    monkeypatch.setattr(os, "write", disk._write)  # space freed
    if where == "start":  # nothing was left: the same command starts afresh
        assert not out.exists()
        rc, _, err = run_cli(capsys, "train", *TINY, "--out", out)
    else:
        for line in (out / "metrics.jsonl").read_text().splitlines():
            json.loads(line)  # no half-written record
        rc, _, err = run_cli(capsys, "train", *TINY, "--out", out, "--resume")
    assert rc == 0, err
    assert records(out) == reference
    assert leftovers(out) == []


# ------------------------------------------------------- damaged files on resume
def _damage(out: Path, how: str) -> str:
    final = out / "checkpoints" / "final"
    if how == "truncated-config":
        text = (out / "config.json").read_text()
        (out / "config.json").write_text(text[: len(text) // 2])
        return "config.json"
    if how == "binary-config":
        (out / "config.json").write_bytes(b"\xff\xfe{}")
        return "config.json"
    if how == "binary-meta":
        with open(final / "meta.json", "ab") as f:
            f.write(b"\xff\xfe")
        return "meta.json"
    if how == "edited-progress":
        meta = json.loads((final / "meta.json").read_text())
        meta["progress"]["online_step"] = 0
        (final / "meta.json").write_text(json.dumps(meta))
        return "meta.json"
    if how == "meta-digest-deleted":
        sums = final / "SHA256SUMS"
        sums.write_text("".join(x for x in sums.read_text().splitlines(keepends=True)
                                if "meta.json" not in x))
        return "SHA256SUMS"
    if how == "no-checksum-record":
        (final / "SHA256SUMS").unlink()
        return "SHA256SUMS"
    if how == "binary-latest":
        (out / "checkpoints" / "LATEST").write_bytes(b"\xff\xfe")
        return "LATEST"
    raise ValueError(how)


DAMAGE = ["truncated-config", "binary-config", "binary-meta", "edited-progress",
          "meta-digest-deleted", "no-checksum-record", "binary-latest"]


def test_damaged_runs_are_refused_by_name(tmp_path, capsys, reference):
    made = tmp_path / "made"
    assert run_cli(capsys, "train", *TINY, "--out", made)[0] == 0
    for how in DAMAGE:
        out = tmp_path / how
        subprocess.run(["cp", "-a", str(made), str(out)], check=True)
        name = _damage(out, how)
        before = snapshot(out)
        line = one_line(*run_cli(capsys, "train", "--out", out, "--resume"))
        assert str(out) in line and name in line, (how, line)
        assert snapshot(out) == before, how


# ------------------------------------------------------------ data and flags
@pytest.fixture
def data_run(tmp_path, capsys, monkeypatch):
    """A run on a dataset file given by a RELATIVE path, from tmp_path/work."""
    from dualrl.collect.qlearning import collect_qlearning
    from dualrl.envs.frozenlake import FrozenLakeShiftEnv

    work = tmp_path / "work"
    work.mkdir()
    write_d4rl(collect_qlearning(FrozenLakeShiftEnv("4x4", slip=0.0), n_episodes=40, seed=0),
               work / "data.hdf5")
    monkeypatch.chdir(work)
    argv = ["train", *TINY, "--dataset", "data.hdf5", "--out", "run"]
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 0, err
    config = json.loads((work / "run" / "config.json").read_text())
    assert config["dataset"] == str(work / "data.hdf5")
    assert config["run"]["dataset"]["path"] == str(work / "data.hdf5")
    assert config["run"]["dataset"]["transitions"] > 0
    return work, argv


def test_resume_from_another_directory_with_the_same_flags(data_run, capsys, monkeypatch):
    work, argv = data_run
    expected = records(work / "run")
    rc, _, err = run_cli(capsys, *argv, "--resume")  # the original command, + --resume
    assert rc == 0, err
    monkeypatch.chdir(work.parent)
    rc, _, err = run_cli(capsys, "train", "--out", "work/run", "--resume")
    assert rc == 0, err
    assert records(work / "run") == expected


def test_resume_names_the_flags_that_differ(data_run, capsys):
    work, argv = data_run
    before = snapshot(work)
    line = one_line(*run_cli(capsys, *argv, "--seed", "7", "--iql.hidden", "8,8",
                             "--online-steps", "200", "--resume"))
    assert "--seed 7 (the run has 2)" in line and "--iql.hidden 8,8 (the run has 16,16)" in line
    assert "--online-steps" not in line  # the same value: fine
    line = one_line(*run_cli(capsys, "train", "--algo", "dual", "--out", "run", "--resume"))
    assert "--algo dual (the run has iql)" in line
    assert snapshot(work) == before


def test_resume_with_changed_data_stops_unless_accepted(data_run, capsys):
    work, _ = data_run
    data = load_dataset(work / "data.hdf5")
    rewards = data.rewards.copy()
    rewards[0] += 1.0
    write_d4rl(data.replace(rewards=rewards), work / "data.hdf5", overwrite=True)
    before = snapshot(work / "run")
    line = one_line(*run_cli(capsys, "train", "--out", "run", "--resume"))
    assert str(work / "data.hdf5") in line and "content differs" in line
    assert "--accept-data-change" in line
    assert snapshot(work / "run") == before
    rc, _, err = run_cli(capsys, "train", "--out", "run", "--resume", "--accept-data-change")
    assert rc == 0, err
    run = json.loads((work / "run" / "config.json").read_text())["run"]
    assert len(run["accepted_data_changes"]) == 1
    assert "content differs" in run["accepted_data_changes"][0]


def test_moved_data_is_accepted_when_it_is_the_same(data_run, capsys):
    work, _ = data_run
    expected = records(work / "run")
    (work / "moved").mkdir()
    os.replace(work / "data.hdf5", work / "moved" / "data.hdf5")
    line = one_line(*run_cli(capsys, "train", "--out", "run", "--resume"))
    assert str(work / "data.hdf5") in line and "no such file" in line
    rc, _, err = run_cli(capsys, "train", "--out", "run", "--resume",
                         "--dataset", "moved/data.hdf5")
    assert rc == 0, err
    assert records(work / "run") == expected
    config = json.loads((work / "run" / "config.json").read_text())
    assert config["dataset"] == config["run"]["dataset"]["path"] == str(
        work / "moved" / "data.hdf5")
