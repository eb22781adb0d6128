import os
import sys

import pytest

# Tests run on the CPU with a persistent compile cache: shapes repeat across tests.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def pytest_configure(config):
    from dualrl.utils import enable_compilation_cache

    enable_compilation_cache()


# Files whose tests must share one test process: the sweep tests share a session fixture (the
# undisturbed reference sweep) and each looks for sweep run processes machine-wide in /proc.
SHARED_PROCESS = {"test_sweep.py": "sweeps", "test_sweep_ray.py": "sweeps"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`), every test of a file runs in the same worker
    (module-scoped fixtures, e.g. a shared training run, are then computed once)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            name = item.path.name
            item.add_marker(pytest.mark.xdist_group(SHARED_PROCESS.get(name, str(item.path))))


@pytest.fixture
def small_dataset():
    """A few hundred Frozen-Lake transitions from the library's own collector."""
    from dualrl.collect.qlearning import collect_qlearning
    from dualrl.envs.frozenlake import FrozenLakeShiftEnv

    return collect_qlearning(FrozenLakeShiftEnv("4x4", slip=0.0), n_episodes=60, seed=0)


@pytest.fixture
def python_exe():
    return sys.executable


class SimulatedCrash(Exception):
    """Stands for a killed process in resume tests."""


class Crasher:
    """Makes a run raise SimulatedCrash part-way: at the online env's n-th step, or at the
    n-th fused offline training chunk."""

    error = SimulatedCrash

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch

    def online(self, run, n: int) -> None:
        self._after(run.env_online, "step", n)

    def offline(self, run, n: int) -> None:
        self._after(run, "_train_chunk", n)

    def _after(self, owner, name: str, n: int) -> None:
        original, calls = getattr(owner, name), {"n": 0}

        def crashing(*args):
            calls["n"] += 1
            if calls["n"] == n:
                raise SimulatedCrash
            return original(*args)

        self.monkeypatch.setattr(owner, name, crashing)


@pytest.fixture
def crash(monkeypatch) -> Crasher:
    return Crasher(monkeypatch)


def read_metric_records(path) -> list[dict]:
    """A run's metrics.jsonl records without their wall-clock times."""
    import json
    from pathlib import Path

    return [{k: v for k, v in json.loads(line).items() if k != "wall_seconds"}
            for line in Path(path).read_text().splitlines()]


@pytest.fixture
def metric_records():
    """`metric_records(path)`: a run's metrics.jsonl records without their wall-clock times (a
    fixture, not an import: `from conftest import ...` picks whichever conftest module pytest
    loaded first, tests/experiments' under xdist)."""
    return read_metric_records


@pytest.fixture
def resume_matches(tmp_path, crash):
    """`resume_matches(config, n)`: trains `config` uninterrupted into tmp/ref, and again into
    tmp/crashed with a crash at online step n then a resume; asserts the two runs' records
    and final scores are equal; returns (reference summary, its records)."""

    def check(config, n: int):
        from dualrl.o2o.loop import O2ORun, resume, train

        reference = train(config, tmp_path / "ref")
        run = O2ORun(config, tmp_path / "crashed")
        crash.online(run, n)
        with pytest.raises(crash.error):
            run.run()
        resumed = resume(tmp_path / "crashed")
        records = read_metric_records(tmp_path / "ref/metrics.jsonl")
        assert read_metric_records(tmp_path / "crashed/metrics.jsonl") == records
        assert resumed["final_score"] == reference["final_score"]
        return reference, records

    return check
