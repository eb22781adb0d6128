"""One sweep run in its own process: `python -m dualrl.experiments.worker OUT LABEL -- FLAGS`.

A fresh folder is trained; a folder holding an interrupted run of the SAME configuration is
resumed from its checkpoint; a finished run is left alone; a folder holding a different
configuration is refused (one line), never overwritten. The method label is written into
the run's config.json and summary.json, where reports read it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from dualrl.flags import ConfigError, build_train_config
from dualrl.o2o.checkpoint import atomic_write_text

# the sweep (or Ray task) that started this process: the run dies with it
PARENT_ENV = "DUALRL_SWEEP_PARENT"


def die_with_parent() -> None:
    """A run process must not outlive the sweep that started it: a sweep killed by SIGKILL
    leaves no orphan writing into a run that the next sweep resumes (Linux; elsewhere the
    run's lock refuses the second writer instead)."""
    parent = os.environ.get(PARENT_ENV)
    if parent is None or sys.platform != "linux":
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != int(parent):  # the parent died before the line above
        os._exit(1)


class SweepRunError(RuntimeError):
    """A sweep run that cannot go on: one line naming the run folder."""


def _same_config(saved: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether config.json (which adds the run's id and label) holds this configuration."""
    fresh = json.loads(json.dumps(config, default=str))
    return all(saved.get(k) == v for k, v in fresh.items())


def label_run(out: Path, label: str) -> None:
    """The sweep's method label (e.g. an ablation of DUAL) into config.json and summary.json."""
    for name in ("config.json", "summary.json"):
        path = out / name
        record = json.loads(path.read_text())
        if record.get("label") != label:
            record["label"] = label
            atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def run_one(out: str | Path, label: str, argv: list[str]) -> dict[str, Any]:
    """Train, resume or skip the run in `out`; returns its summary."""
    from dualrl.o2o.loop import resume, train
    from dualrl.o2o.rundir import RunDir

    out = Path(out)
    config, _ = build_train_config(argv, prog=f"sweep run {out}")
    if (out / "summary.json").exists():
        summary = json.loads((out / "summary.json").read_text())
    elif RunDir(out).exists():
        saved = json.loads((out / "config.json").read_text())
        if not _same_config(saved, config.to_dict()):
            raise SweepRunError(f"{out}: holds a run of another configuration; remove it or "
                                "sweep into another --out")
        summary = resume(out)
    else:
        summary = train(config, out)
    label_run(out, label)
    return summary


def main(argv: list[str] | None = None) -> int:
    from dualrl.utils import enable_compilation_cache

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[2] != "--":
        print("usage: python -m dualrl.experiments.worker OUT LABEL -- FLAGS", file=sys.stderr)
        return 2
    die_with_parent()
    enable_compilation_cache()
    out, label, flags = argv[0], argv[1], argv[3:]
    try:
        summary = run_one(out, label, flags)
    except (ConfigError, SweepRunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary.get(k) for k in ("offline_score", "online_mean_score",
                                                  "final_score", "wall_seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
