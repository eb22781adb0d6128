"""`dualrl sweep SPEC.yaml`: every run of a sweep spec, unattended, on this machine or on an
existing Ray cluster.

    dualrl sweep experiments/frozenlake_grid.yaml                 # local process pool
    dualrl sweep experiments/frozenlake_grid.yaml --workers 2 --out runs/fl
    dualrl sweep experiments/frozenlake_grid.yaml --ray auto      # `ray start --head` first
    dualrl sweep experiments/frozenlake_grid.yaml --dry-run       # list the runs

Each run is a process of its own (`dualrl.experiments.worker`), on the local pool or inside a
Ray task (resources from the spec). Rerunning the command continues the sweep: finished runs
are skipped, interrupted ones resume from their checkpoints. A failed run is retried (it
resumes) up to the spec's `retries`, then reported; a Ray worker or node that dies has its
runs rescheduled by Ray (its task retries) and by the retry budget here. DUAL runs of one
(task, seed) share their planner / student stages; the scheduler starts one of them first and
fills the other slots with runs of other seeds while it computes them. Progress (done /
running / failed / pending, ETA) is one line on stderr per change; OUT/sweep.json holds every
run's state, OUT/logs/ every run's output.

With Ray on several machines, OUT must be a folder every node sees at the same path (NFS or
similar): the runs, checkpoints and stage cache live there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualrl.experiments.spec import Run, SpecError, SweepSpec, load_spec
from dualrl.experiments.worker import PARENT_ENV
from dualrl.o2o.checkpoint import atomic_write_text


def worker_command(run: Run) -> list[str]:
    return [sys.executable, "-m", "dualrl.experiments.worker", str(run.out), run.label, "--",
            *run.argv]


def run_in_subprocess(run: Run, log: Path, env: dict[str, str] | None = None
                      ) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as f:
        f.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(worker_command(run))}\n"
                .encode())
        f.flush()
        env = {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}
        return subprocess.Popen(worker_command(run), stdout=f, stderr=subprocess.STDOUT,
                                env=env)


def last_error_line(log: Path) -> str:
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip()[:300] if lines else "no output"


# ------------------------------------------------------------------- backends
class LocalBackend:
    """A pool of `workers` run processes on this machine."""

    def __init__(self, workers: int):
        self.capacity = workers
        self.procs: dict[str, subprocess.Popen] = {}

    def describe(self) -> str:
        return f"local, {self.capacity} worker process{'es' if self.capacity > 1 else ''}"

    def submit(self, run: Run, log: Path) -> None:
        self.procs[run.key] = run_in_subprocess(run, log)

    def poll(self) -> list[tuple[str, bool, str]]:
        """Finished runs since the last call: (key, succeeded, why not)."""
        done = []
        for key, proc in list(self.procs.items()):
            rc = proc.poll()
            if rc is not None:
                del self.procs[key]
                done.append((key, rc == 0, "" if rc == 0 else f"exit status {rc}"))
        return done

    def shutdown(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ray_run(run: Run, log: str) -> int:
    """The Ray task: the run's own process on whichever node Ray chose."""
    env = dict(os.environ)
    if not os.environ.get("CUDA_VISIBLE_DEVICES"):  # a run given no GPU must not take one
        env.setdefault("JAX_PLATFORMS", "cpu")
    proc = run_in_subprocess(run, Path(log), env)
    return proc.wait()


class RayBackend:
    """Each run a Ray task on an existing cluster (`ray.init(address)`)."""

    def __init__(self, address: str, cpus: float, gpus: float, system_retries: int = 3):
        try:
            import ray
        except ImportError:
            raise SpecError("--ray needs Ray: pip install 'dualrl[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)
        self.remote = ray.remote(_ray_run).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=system_retries, retry_exceptions=False)
        self.cpus, self.gpus = cpus, gpus
        self.refs: dict[Any, str] = {}

    @property
    def capacity(self) -> int:
        res = self.ray.cluster_resources()
        slots = res.get("CPU", 1) // self.cpus
        if self.gpus:
            slots = min(slots, res.get("GPU", 0) // self.gpus)
        return max(1, int(slots))

    def describe(self) -> str:
        res = self.ray.cluster_resources()
        return (f"Ray cluster, {len(self.ray.nodes())} node(s), {res.get('CPU', 0):.0f} CPUs, "
                f"{res.get('GPU', 0):.0f} GPUs")

    def submit(self, run: Run, log: Path) -> None:
        self.refs[self.remote.remote(run, str(log))] = run.key

    def poll(self) -> list[tuple[str, bool, str]]:
        if not self.refs:
            return []
        ready, _ = self.ray.wait(list(self.refs), num_returns=len(self.refs), timeout=0)
        done = []
        for ref in ready:
            key = self.refs.pop(ref)
            try:
                rc = self.ray.get(ref)
                done.append((key, rc == 0, "" if rc == 0 else f"exit status {rc}"))
            except Exception as e:  # the worker or node died past Ray's own retries
                done.append((key, False, f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"))
        return done

    def shutdown(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)


# ------------------------------------------------------------------- the sweep
@dataclass
class RunState:
    state: str = "pending"  # pending | running | done | failed
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    started: float | None = None
    seconds: float | None = None


class Sweep:
    """Schedules a spec's runs on a backend until every run is done or out of retries."""

    def __init__(self, spec: SweepSpec, backend: Any, log: Callable[[str], None] | None = None,
                 poll_seconds: float = 0.5):
        self.spec, self.backend = spec, backend
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.poll_seconds = poll_seconds
        self.runs = {r.key: r for r in spec.runs}
        self.states = {key: RunState() for key in self.runs}
        self.status_file = spec.out / "sweep.json"
        self.started = time.monotonic()

    def log_file(self, run: Run) -> Path:
        return self.spec.out / "logs" / run.task / run.label / f"seed{run.seed}.log"

    def _write_status(self) -> None:
        data = {"name": self.spec.name, "source": str(self.spec.source),
                "counts": self.counts(),
                "runs": {k: {"state": s.state, "attempts": s.attempts, "errors": s.errors,
                             "seconds": s.seconds, "log": str(self.log_file(self.runs[k]))}
                         for k, s in self.states.items()}}
        atomic_write_text(self.status_file, json.dumps(data, indent=2) + "\n")

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("done", "running", "failed", "pending"), 0)
        for s in self.states.values():
            counts[s.state] += 1
        return counts

    def _progress(self) -> None:
        c = self.counts()
        line = (f"sweep {self.spec.name}: {c['done']}/{len(self.runs)} done, "
                f"{c['running']} running, {c['failed']} failed, {c['pending']} pending")
        took = [s.seconds for s in self.states.values() if s.seconds is not None]
        if took and (c["pending"] or c["running"]):
            per_run = sum(took) / len(took)
            eta = per_run * (c["pending"] + c["running"] / 2) / max(1, self.backend.capacity)
            line += f", ETA {_duration(eta)}"
        self.log(line)

    def _next_run(self, warm: set) -> Run | None:
        """The first pending run (seed-major order), preferring those whose DUAL stages are
        cached or not being computed by a running run."""
        pending = [self.runs[k] for k, s in self.states.items() if s.state == "pending"]
        busy = {self.runs[k].stage_group for k, s in self.states.items()
                if s.state == "running"} - warm
        for run in pending:
            if run.stage_group is None or run.stage_group not in busy:
                return run
        return pending[0] if pending else None  # it waits on the stage lock, then reuses

    def run(self) -> dict[str, int]:
        self.spec.out.mkdir(parents=True, exist_ok=True)
        warm = set()
        for key, run in self.runs.items():
            if (run.out / "summary.json").exists():
                self.states[key].state = "done"
                warm.add(run.stage_group)
        c = self.counts()
        self.log(f"sweep {self.spec.name}: {len(self.runs)} runs into {self.spec.out} "
                 f"({c['done']} done before); {self.backend.describe()}")
        self._write_status()
        try:
            while True:
                changed = False
                for key, ok, why in self.backend.poll():
                    changed = True
                    state, run = self.states[key], self.runs[key]
                    state.seconds = time.monotonic() - (state.started or time.monotonic())
                    if ok and (run.out / "summary.json").exists():
                        state.state = "done"
                        warm.add(run.stage_group)
                        continue
                    state.errors.append(f"{why}: {last_error_line(self.log_file(run))}")
                    retry = state.attempts <= self.spec.retries
                    state.state = "pending" if retry else "failed"
                    self.log(f"sweep: {key} failed ({state.errors[-1]}); "
                             + ("retrying, it resumes" if retry else
                                f"giving up after {state.attempts} attempts, log "
                                f"{self.log_file(run)}"))
                running = sum(s.state == "running" for s in self.states.values())
                while running < self.backend.capacity:
                    run = self._next_run(warm)
                    if run is None:
                        break
                    state = self.states[run.key]
                    state.state, state.started = "running", time.monotonic()
                    state.attempts += 1
                    self.backend.submit(run, self.log_file(run))
                    running += 1
                    changed = True
                if changed:
                    self._write_status()
                    self._progress()
                if running == 0:
                    break
                time.sleep(self.poll_seconds)
        finally:
            self.backend.shutdown()
            for state in self.states.values():
                if state.state == "running":  # interrupted: the next sweep resumes it
                    state.state = "pending"
            self._write_status()
        c = self.counts()
        for key, s in self.states.items():
            if s.state == "failed":
                self.log(f"sweep: FAILED {key}: {s.errors[-1]} "
                         f"(log {self.log_file(self.runs[key])})")
        self.log(f"sweep {self.spec.name}: finished, {c['done']} done, {c['failed']} failed "
                 f"in {_duration(time.monotonic() - self.started)}")
        return c


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise SpecError(f"{self.prog}: {message}")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="dualrl sweep", description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="a sweep spec (.yaml, .yml or .toml)")
    parser.add_argument("--out", default=None, help="output folder (default: the spec's)")
    parser.add_argument("--workers", type=int, default=None,
                        help="local backend: runs at a time (default: cores / resources.cpus)")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run on an existing Ray cluster ('auto' or host:port)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and stop")
    args = parser.parse_args(argv)
    spec = load_spec(args.spec, args.out)
    if args.dry_run:
        for run in spec.runs:
            done = "done" if (run.out / "summary.json").exists() else "todo"
            print(f"{done}  {run.key}  {' '.join(run.argv)}")
        return 0
    if args.workers is not None and args.workers < 1:
        raise SpecError("dualrl sweep: --workers must be at least 1")
    if args.ray:
        backend = RayBackend(args.ray, spec.cpus, spec.gpus)
    else:
        workers = args.workers or max(1, int((os.cpu_count() or 1) // spec.cpus))
        backend = LocalBackend(workers)
    counts = Sweep(spec, backend).run()
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
