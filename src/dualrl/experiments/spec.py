"""Sweep specs: a small YAML or TOML file naming tasks × methods × seeds, turned into runs.

    name: frozenlake-grid            # the default output folder is runs/<name>
    preset: cpu                      # the budget preset every run starts from
    seeds: [0, 1, 2, 3, 4]
    tasks: [frozenlake-shift]        # or {task: "flags for that task only"}
    common: --eval-episodes 100      # flags shared by every run
    methods:                         # label: `dualrl train` flags
      dual: --algo dual
      iql: --algo iql
      dual-no-shift: --algo dual --shift-weight 0
    retries: 1                       # extra attempts after a failed run (resuming it)
    resources: {cpus: 1, gpus: 0}    # per run: the local pool's size, Ray's task resources
    grids:                           # optional sub-grids; each inherits the keys above
      - {methods: {dual-no-distill: --algo dual --no-distill}, seeds: [0, 1, 2]}

A run is (task, label, seed) and lives in OUT/<task>/<label>/seed<seed>. Its flags are
`--task T --seed S --preset P` + common + the task's flags + the method's flags. DUAL runs
get `--dual.stage-cache OUT/stage-cache`, so the methods of a seed compute their planner and
student once. Every run's flags are checked (`dualrl.flags.build_train_config`) before any
run starts; a bad spec is one line naming the file and the problem.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualrl.flags import ConfigError, build_train_config

KEYS = ("name", "preset", "seeds", "tasks", "common", "methods", "retries", "resources",
        "grids", "out")
GRID_KEYS = ("preset", "seeds", "tasks", "common", "methods")


class SpecError(ValueError):
    """A malformed sweep spec: one line naming the file and the problem."""


@dataclass(frozen=True)
class Run:
    """One training run of a sweep."""

    task: str
    label: str
    seed: int
    argv: tuple[str, ...]  # `dualrl train` flags, --out excluded
    algo: str
    out: Path

    @property
    def key(self) -> str:
        return f"{self.task}/{self.label}/seed{self.seed}"

    @property
    def stage_group(self) -> tuple[str, int] | None:
        """Runs of one group share cached DUAL stages (planner, student): the first to run
        computes them, the others reuse them."""
        return (self.task, self.seed) if self.algo == "dual" else None


@dataclass(frozen=True)
class SweepSpec:
    name: str
    runs: list[Run]
    out: Path
    retries: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    source: Path | None = field(default=None, compare=False)


def _flags(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return [str(v) for v in value]
    raise SpecError(f"{where}: flags must be a string or a list of strings, not {value!r}")


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The spec's mapping, from YAML (.yaml/.yml) or TOML (.toml)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(f"{path}: cannot read the sweep spec ({e.strerror or e})") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise SpecError(f"{path}: a sweep spec is a .yaml, .yml or .toml file")
    except (tomllib.TOMLDecodeError, ValueError) as e:
        if isinstance(e, SpecError):
            raise
        raise SpecError(f"{path}: not valid {path.suffix[1:].upper()}: "
                        f"{' '.join(str(e).split())}") from None
    except Exception as e:  # yaml.YAMLError
        raise SpecError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a sweep spec is a mapping of {', '.join(KEYS)}")
    return data


def load_spec(path: str | Path, out: str | Path | None = None,
              check: bool = True) -> SweepSpec:
    """Read and expand a sweep spec; `out` overrides its output folder. With `check`, every
    run's flags are resolved into a TrainConfig now, so a typo fails before any run."""
    path = Path(path)
    return expand_spec(read_spec_file(path), path, out, check)


def expand_spec(data: dict[str, Any], source: Path, out: str | Path | None = None,
                check: bool = True) -> SweepSpec:
    where = str(source)
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: "
                        f"{', '.join(KEYS)}")
    name = str(data.get("name") or source.stem)
    out_dir = Path(out if out is not None else data.get("out") or Path("runs") / name).resolve()
    try:
        retries = int(data.get("retries", 1))
        resources = dict(data.get("resources") or {})
        cpus, gpus = float(resources.pop("cpus", 1)), float(resources.pop("gpus", 0))
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: retries / resources: {e}") from None
    if resources:
        raise SpecError(f"{where}: resources: unknown key(s) {', '.join(sorted(resources))}; "
                        "valid keys: cpus, gpus")
    if retries < 0 or cpus <= 0 or gpus < 0:
        raise SpecError(f"{where}: retries must be >= 0, resources.cpus > 0, resources.gpus "
                        ">= 0")
    grids = data.get("grids") or [{}]
    if not isinstance(grids, list) or not all(isinstance(g, dict) for g in grids):
        raise SpecError(f"{where}: grids must be a list of mappings")
    runs: dict[str, Run] = {}
    for i, grid in enumerate(grids):
        bad = sorted(set(grid) - set(GRID_KEYS))
        if bad:
            raise SpecError(f"{where}: grids[{i}]: unknown key(s) {', '.join(bad)}; valid keys: "
                            f"{', '.join(GRID_KEYS)}")
        merged = {k: grid.get(k, data.get(k)) for k in GRID_KEYS}
        for run in _grid_runs(merged, f"{where}" + (f": grids[{i}]" if "grids" in data else ""),
                              out_dir):
            if run.key in runs and runs[run.key].argv != run.argv:
                raise SpecError(f"{where}: run {run.key} is given twice with different flags")
            runs.setdefault(run.key, run)
    if not runs:
        raise SpecError(f"{where}: the spec names no runs (tasks, methods and seeds)")
    spec = SweepSpec(name, list(runs.values()), out_dir, retries, cpus, gpus, source)
    if check:
        for run in spec.runs:
            try:
                build_train_config(list(run.argv), prog=f"{where}: {run.key}")
            except ConfigError as e:
                raise SpecError(str(e)) from None
    return spec


def _grid_runs(grid: dict[str, Any], where: str, out: Path) -> list[Run]:
    tasks, methods, seeds = grid["tasks"], grid["methods"], grid["seeds"]
    if isinstance(tasks, str):
        tasks = [tasks]
    if isinstance(tasks, list):
        tasks = {t: "" for t in tasks}
    if not isinstance(tasks, dict) or not tasks:
        raise SpecError(f"{where}: tasks must be a list of task names or a mapping "
                        "task: flags")
    if not isinstance(methods, dict) or not methods:
        raise SpecError(f"{where}: methods must be a mapping label: flags")
    if isinstance(seeds, int):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise SpecError(f"{where}: seeds must be a list of integers")
    preset = str(grid["preset"] or "cpu")
    common = _flags(grid["common"], f"{where}: common")
    runs = []
    for seed in seeds:  # seed-major: a partial sweep still covers every method
        for task, task_flags in tasks.items():
            for label, method_flags in methods.items():
                if not isinstance(label, str) or not label or "/" in label:
                    raise SpecError(f"{where}: method label {label!r} must be a name without /")
                flags = _flags(method_flags, f"{where}: methods.{label}")
                if any(f in ("--out", "--resume") or f.startswith("--out=") for f in flags):
                    raise SpecError(f"{where}: methods.{label}: --out / --resume are the "
                                    "sweep's to set")
                argv = ["--task", str(task), "--seed", str(seed), "--preset", preset, *common,
                        *_flags(task_flags, f"{where}: tasks.{task}"), *flags]
                algo = _algo(argv)
                if algo == "dual" and "--dual.stage-cache" not in argv:
                    argv += ["--dual.stage-cache", str(out / "stage-cache")]
                runs.append(Run(str(task), label, seed, tuple(argv), algo,
                                out / str(task) / label / f"seed{seed}"))
    return runs


def _algo(argv: list[str]) -> str:
    """The last `--algo` given (as `dualrl train` reads it), else its default."""
    algo = "iql"
    for i, token in enumerate(argv):
        if token == "--algo" and i + 1 < len(argv):
            algo = argv[i + 1]
        elif token.startswith("--algo="):
            algo = token.split("=", 1)[1]
    return algo
