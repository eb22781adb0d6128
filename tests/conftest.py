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
