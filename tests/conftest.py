import os
import sys

import pytest

# Tests run on the CPU with a persistent compile cache: shapes repeat across tests.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def pytest_configure(config):
    from dualrl.utils import enable_compilation_cache

    enable_compilation_cache()


@pytest.fixture
def small_dataset():
    """A few hundred Frozen-Lake transitions from the library's own collector."""
    from dualrl.collect.qlearning import collect_qlearning
    from dualrl.envs.frozenlake import FrozenLakeShiftEnv

    return collect_qlearning(FrozenLakeShiftEnv("4x4", slip=0.0), n_episodes=60, seed=0)


@pytest.fixture
def python_exe():
    return sys.executable
