"""`dualrl sweep`: spec files, the local process pool (retries, resume after the sweep itself
is SIGKILLed, shared DUAL stages) and the runs' labels. The Ray backend: test_sweep_ray.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_helpers import SPEC, TINY, all_records, write

from dualrl.experiments.spec import SpecError, load_spec
from dualrl.experiments.sweep import LocalBackend, Sweep


# ------------------------------------------------------------------------ specs
def test_yaml_and_toml_specs_expand_to_the_same_runs(tmp_path):
    toml = f"""
name = "tiny"
preset = "quick"
seeds = [0]
tasks = ["frozenlake-shift"]
common = "{TINY}"
retries = 1
[methods]
iql = "--algo iql"
iql-e9 = ["--algo", "iql", "--iql.expectile", "0.9"]
"""
    a = load_spec(write(tmp_path / "a.yaml", SPEC), tmp_path / "out")
    b = load_spec(write(tmp_path / "b.toml", toml), tmp_path / "out")
    assert a.runs == b.runs
    assert [r.key.split("/", 1)[1] for r in a.runs] == ["iql/seed0", "iql-e9/seed0"]
    run = a.runs[1]
    assert run.out == (tmp_path / "out/frozenlake-shift/iql-e9/seed0").resolve()
    assert run.argv[:6] == ("--task", "frozenlake-shift", "--seed", "0", "--preset", "quick")
    assert run.argv[-4:] == ("--algo", "iql", "--iql.expectile", "0.9")


def test_dual_runs_share_a_stage_cache_in_the_output_folder(tmp_path):
    spec = load_spec(write(tmp_path / "s.yaml", "tasks: [frozenlake-shift]\nseeds: [3]\n"
                           "methods: {dual: --algo dual, iql: --algo iql}\n"), tmp_path / "o")
    dual, iql = spec.runs
    assert dual.argv[-2:] == ("--dual.stage-cache", str((tmp_path / "o/stage-cache").resolve()))
    assert "--dual.stage-cache" not in iql.argv
    assert (dual.stage_group, iql.stage_group) == (("frozenlake-shift", 3), None)


@pytest.mark.parametrize("text, message", [
    ("tasks: [frozenlake-shift]\nseeds: [0]\nmethods: {a: --algo iql}\nworkers: 3\n",
     "unknown key(s) workers"),
    ("tasks: [frozenlake-shift]\nseeds: [0]\nmethods: {a: --algo iql --iql.expectil 0.9}\n",
     "frozenlake-shift/a/seed0: unknown option '--iql.expectil'"),
    ("tasks: [no-such-task]\nseeds: [0]\nmethods: {a: --algo iql}\n", "unknown task"),
    ("tasks: [frozenlake-shift]\nseeds: [zero]\nmethods: {a: --algo iql}\n",
     "seeds must be a list of integers"),
    ("tasks: [frozenlake-shift]\nseeds: [0]\nmethods: {a: --algo iql --out x}\n",
     "--out / --resume are the sweep's"),
    ("tasks: [frozenlake-shift]\nseeds: [0]\nmethods: {a: --algo iql}\ngrids:\n"
     "  - {}\n  - {methods: {a: --algo dual}}\n", "frozenlake-shift/a/seed0 is given twice"),
    ("tasks: [frozenlake-shift\n", "not valid YAML"),
    ("- just a list\n", "a sweep spec is a mapping"),
])
def test_a_bad_spec_is_one_line_naming_the_file(tmp_path, text, message):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(SpecError) as info:
        load_spec(path, tmp_path / "out")
    line = str(info.value)
    assert message in line and str(path) in line and "\n" not in line
    assert not (tmp_path / "out").exists()


def test_the_cli_reports_a_bad_spec_in_one_line_and_lists_runs(tmp_path, capsys):
    from dualrl.cli import main

    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml: cannot read the sweep spec" in err and len(err.splitlines()) == 1
    spec = write(tmp_path / "s.yaml", SPEC)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(line.startswith("todo  frozenlake-shift/") for line in out)


# ------------------------------------------------------------------ local pool
def test_local_sweep_runs_labels_retries_and_reports_a_failure(reference):
    out, counts, lines = reference
    assert counts == {"done": 2, "running": 0, "failed": 1, "pending": 0}
    status = json.loads((out / "sweep.json").read_text())
    broken = status["runs"]["frozenlake-shift/broken/seed0"]
    assert broken["state"] == "failed" and broken["attempts"] == 2  # retried once
    assert "/nonexistent/data.hdf5" in broken["errors"][-1]
    assert any("FAILED frozenlake-shift/broken/seed0" in line for line in lines)
    assert any(line.endswith("2/3 done, 0 running, 1 failed, 0 pending") for line in lines)
    for label in ("iql", "iql-e9"):
        for seed in (0,):
            run = out / "frozenlake-shift" / label / f"seed{seed}"
            summary = json.loads((run / "summary.json").read_text())
            assert summary["label"] == label and summary["seed"] == seed
            assert json.loads((run / "config.json").read_text())["label"] == label
    expectiles = {json.loads((out / f"frozenlake-shift/{m}/seed0/config.json").read_text())
                  ["agent"]["expectile"] for m in ("iql", "iql-e9")}
    assert 0.9 in expectiles and len(expectiles) == 2


def test_a_finished_sweep_is_not_rerun(reference, tmp_path):
    out, _, _ = reference
    spec = load_spec(write(tmp_path / "spec.yaml", SPEC), out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}
    lines: list[str] = []
    assert Sweep(spec, LocalBackend(2), log=lines.append).run()["done"] == 2
    assert "(2 done before)" in lines[0]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")} == before


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to find the run processes")
def test_sigkilled_sweep_resumes_to_the_undisturbed_results(reference, tmp_path):
    ref_out, _, _ = reference
    spec_file = write(tmp_path / "spec.yaml", SPEC)
    out = tmp_path / "out"
    log = tmp_path / "sweep.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "dualrl.cli", "sweep", str(spec_file),
                                 "--out", str(out), "--workers", "2"], stdout=f, stderr=f,
                                env={**os.environ, "JAX_PLATFORMS": "cpu"})
    try:
        deadline = time.monotonic() + 240
        latest = out / "frozenlake-shift/iql/seed0/checkpoints/LATEST"
        while not (latest.exists() and latest.read_text().startswith("online-")):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 30  # the run processes die with the sweep
    while any(Path(f"/proc/{pid}").exists() and "Z" not in
              Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
              for pid in workers if Path(f"/proc/{pid}/stat").exists()):
        assert time.monotonic() < deadline, "a run process outlived the killed sweep"
        time.sleep(0.1)
    assert not (out / "frozenlake-shift/iql/seed0/summary.json").exists()
    lines: list[str] = []
    counts = Sweep(load_spec(spec_file, out), LocalBackend(2), log=lines.append).run()
    assert counts["done"] == 2 and counts["failed"] == 0
    reference_records = {k: v for k, v in all_records(ref_out).items() if "broken" not in k}
    assert all_records(out) == reference_records


def test_a_run_folder_of_another_configuration_is_refused(tmp_path):
    from dualrl.experiments.worker import SweepRunError, run_one

    spec = load_spec(write(tmp_path / "s.yaml", SPEC), tmp_path / "o")
    run = spec.runs[0]
    run.out.mkdir(parents=True)
    (run.out / "config.json").write_text(json.dumps({"task": "frozenlake-shift", "algo": "iql",
                                                     "seed": 7}))
    with pytest.raises(SweepRunError, match="another configuration"):
        run_one(run.out, run.label, list(run.argv))
    assert json.loads((run.out / "config.json").read_text())["seed"] == 7


class FakeBackend:
    """Runs 'finish' one poll after they start (writing summary.json), failing as told."""

    def __init__(self, capacity: int, fail: dict[str, int] | None = None):
        self.capacity, self.fail = capacity, dict(fail or {})
        self.started: list[str] = []
        self.running: dict[str, object] = {}

    def describe(self) -> str:
        return "fake"

    def submit(self, run, log) -> None:
        self.started.append(run.key)
        self.running[run.key] = run

    def poll(self):
        done = []
        for key, run in list(self.running.items())[:1]:  # one finishes per poll
            del self.running[key]
            if self.fail.get(key, 0) > 0:
                self.fail[key] -= 1
                done.append((key, False, "exit status 1"))
                continue
            run.out.mkdir(parents=True, exist_ok=True)
            (run.out / "summary.json").write_text("{}")
            done.append((key, True, ""))
        return done

    def shutdown(self) -> None:
        pass


def test_scheduler_starts_one_dual_run_per_seed_first_and_retries_failures(tmp_path):
    spec = load_spec(write(tmp_path / "s.yaml", """
tasks: [frozenlake-shift]
seeds: [0, 1]
methods: {dual: --algo dual, dual-no-shift: --algo dual --shift-weight 0, iql: --algo iql}
retries: 2
"""), tmp_path / "o")
    backend = FakeBackend(2, fail={"frozenlake-shift/iql/seed1": 2,
                                   "frozenlake-shift/iql/seed0": 3})
    counts = Sweep(spec, backend, log=lambda line: None, poll_seconds=0).run()
    # the second slot skips seed 0's second DUAL method (it would wait on the planner that
    # seed 0's first run is computing) until that run is done
    assert backend.started[:3] == ["frozenlake-shift/dual/seed0", "frozenlake-shift/iql/seed0",
                                   "frozenlake-shift/dual-no-shift/seed0"]
    assert backend.started.count("frozenlake-shift/iql/seed1") == 3  # 2 failures, then done
    assert backend.started.count("frozenlake-shift/iql/seed0") == 3  # 1 + 2 retries, failed
    assert counts == {"done": 5, "running": 0, "failed": 1, "pending": 0}


def test_the_committed_experiment_specs_expand_and_check(tmp_path):
    specs = sorted((Path(__file__).parents[2] / "experiments").glob("*.yaml"))
    assert len(specs) >= 4
    for path in specs:
        spec = load_spec(path, tmp_path / path.stem)  # every run's flags resolve
        assert spec.runs
