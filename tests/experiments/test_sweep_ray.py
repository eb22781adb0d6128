"""`dualrl sweep --ray`: a 2-worker local Ray cluster runs the tiny sweep; one worker node is
killed while it trains a run, and the sweep still ends with every run's metrics equal to the
undisturbed local sweep's (the lost run is rescheduled and resumes from its checkpoint)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import ray  # in the test extra: pip install -e '.[test]'
from sweep_helpers import SPEC, all_records, write

from dualrl.experiments.spec import load_spec
from dualrl.experiments.sweep import RayBackend, Sweep


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _run_processes() -> dict[int, str]:
    """PID -> command line of every sweep run process (dualrl.experiments.worker)."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"dualrl.experiments.worker" in args:
            found[int(cmdline.parent.name)] = " ".join(a.decode() for a in args)
    return found


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    # the head takes no runs; two worker nodes of one CPU each
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0,
                                                             "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the run processes in /proc")
def test_ray_sweep_survives_a_killed_worker_node(reference, cluster, tmp_path):
    ref_out, _, _ = reference
    cluster, nodes = cluster
    spec = load_spec(write(tmp_path / "spec.yaml", SPEC), tmp_path / "out")
    backend = RayBackend(cluster.address, cpus=1, gpus=0)
    assert backend.capacity == 2
    lines: list[str] = []
    killed: list[str] = []
    sweep = Sweep(spec, backend, log=lines.append, poll_seconds=0.1)

    poll = backend.poll

    def poll_and_kill_once():
        """Once a run has an online checkpoint, remove the worker node that trains it."""
        if not killed:
            for pid, cmd in _run_processes().items():
                run_dir = Path(cmd.split(" -- ")[0].split()[-2])
                latest = run_dir / "checkpoints" / "LATEST"
                if str(tmp_path) in cmd and latest.exists() and \
                        latest.read_text().startswith("online-"):
                    raylet = _ppid(_ppid(pid) or 0)
                    for node in nodes:
                        if node.all_processes["raylet"][0].process.pid == raylet:
                            cluster.remove_node(node, allow_graceful=False)
                            killed.append(str(run_dir))
                            break
                    if killed:
                        break
        return poll()

    backend.poll = poll_and_kill_once
    start = time.monotonic()
    counts = sweep.run()
    assert killed, f"no run was caught mid-way ({time.monotonic() - start:.0f} s): {lines}"
    assert counts == {"done": 2, "running": 0, "failed": 0, "pending": 0}, lines
    reference_records = {k: v for k, v in all_records(ref_out).items() if "broken" not in k}
    assert all_records(spec.out) == reference_records
