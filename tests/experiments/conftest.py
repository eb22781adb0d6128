"""A tiny sweep spec and its undisturbed reference sweep, shared by the sweep tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # sweep_helpers

from sweep_helpers import BROKEN, SPEC, write  # noqa: E402

from dualrl.experiments.spec import load_spec  # noqa: E402
from dualrl.experiments.sweep import LocalBackend, Sweep  # noqa: E402


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """The tiny spec plus a run that cannot load its dataset, swept undisturbed on the local
    pool: (output folder, counts, log lines)."""
    root = tmp_path_factory.mktemp("sweep")
    spec = load_spec(write(root / "spec.yaml", SPEC + BROKEN), root / "out")
    lines: list[str] = []
    counts = Sweep(spec, LocalBackend(2), log=lines.append, poll_seconds=0.1).run()
    return root / "out", counts, lines
