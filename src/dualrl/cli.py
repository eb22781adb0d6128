"""The `dualrl` command: a thin layer over the Python API (nothing imports this module).

    dualrl train --algo iql --task frozenlake-shift --seed 0 --preset quick --out DIR
    dualrl train --out DIR --resume      (the original flags may be repeated; they must match)
    dualrl train --seed 0 --vmap-seeds 5 --out DIR   (5 seeds as one vmapped program)
    dualrl demo
    dualrl sweep SPEC.yaml [--ray auto]  (tasks × methods × seeds; see experiments/)
    dualrl report RUNS_DIR --out PAGE.md (tables with IQM and bootstrap CIs, curves)
    dualrl collect frozenlake --slip 0.1 --out FILE.hdf5
    dualrl collect sac --env hopper --preset small --out DIR   (D4RL-style SAC datasets)
    dualrl collect maze --maze umaze --out maze2d-umaze-v1.hdf5  (PD waypoint controller)
    dualrl info PATH
    dualrl planner fit --task frozenlake-noshift --out DIR    (then: planner distill --out DIR)
    dualrl bench throughput --out FILE.json
    dualrl bench latency --out FILE.json
    dualrl bench efficiency --task frozenlake-shift --runs RUNS_DIR   (latency vs return)

Every config field is a flag: loop fields as `--offline-steps 1000`, algorithm fields as
`--iql.expectile 0.9`, task parameters as `--env.slip-online 0.5`.

Errors are one line on stderr; `--debug` (or DUALRL_DEBUG=1) shows the full traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

COMMANDS = ("train", "demo", "sweep", "report", "collect", "info", "planner", "bench")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{self.prog}: {message}")


# ----------------------------------------------------------------------- train
def _train_help(argv: list[str]) -> None:
    """`dualrl train --help`: this text, the fixed options and every config flag."""
    from dualrl.flags import TRAIN_DEFAULTS, TRAIN_OPTIONS, parse_train_options, train_flags

    known, _ = parse_train_options(argv)
    print(__doc__)
    print("options:", " ".join(TRAIN_OPTIONS))
    print("config flags:", " ".join(sorted(train_flags(known.task or TRAIN_DEFAULTS["task"],
                                                       known.algo or TRAIN_DEFAULTS["algo"]))))


def cmd_train(argv: list[str]) -> int:
    from dualrl.flags import build_train_config, check_resume_flags, parse_train_options
    from dualrl.o2o.loop import resume, train
    from dualrl.o2o.rundir import RunDir

    known, _ = parse_train_options(argv)
    if known.help:
        if known.resume:
            raise CLIError("dualrl train: --help and --resume do not go together")
        _train_help(argv)
        raise SystemExit(0)
    if known.resume:
        if known.out is None:
            raise CLIError("dualrl train: --resume needs --out DIR (the run to continue)")
        if known.vmap_seeds is not None:
            raise CLIError("dualrl train: --resume continues one seed's run: "
                           "dualrl train --out DIR/seed<k> --resume")
        run_dir = RunDir(known.out)
        if run_dir.exists():  # compare before loading anything; the run re-reads it locked
            check_resume_flags(argv, run_dir.read_json("config.json"),
                               run_dir.path / "config.json")
        summary = resume(known.out, dataset=known.dataset,
                         accept_data_change=known.accept_data_change)
    else:
        if known.accept_data_change:
            raise CLIError("dualrl train: --accept-data-change only applies with --resume")
        config, known = build_train_config(argv)
        if known.vmap_seeds is not None:
            return _train_vmapped(config, known.vmap_seeds, known.out)
        summary = train(config, known.out)
    print(format_table([summary]))
    if known.out:
        print(f"run directory: {known.out}")
    return 0


def _train_vmapped(config: Any, n: int, out: str | None) -> int:
    """`--vmap-seeds N`: seeds seed..seed+N-1 as one vmapped program, run directories
    OUT/seed<k> (each resumable on its own with --resume)."""
    from dualrl.o2o.vmapped import train_seeds

    if n < 1:
        raise CLIError("dualrl train: --vmap-seeds must be at least 1")
    seeds = list(range(config.seed, config.seed + n))
    outs = [None if out is None else Path(out) / f"seed{s}" for s in seeds]
    summaries = train_seeds(config, seeds, outs)
    print(format_table(summaries))
    if out:
        print(f"run directories: {out}/seed{{{seeds[0]}..{seeds[-1]}}}")
    return 0


# ------------------------------------------------------------------------ demo
def format_table(summaries: list[dict[str, Any]]) -> str:
    cols = ["algo", "task", "seed", "offline_score", "online_mean_score", "final_score",
            "wall_seconds"]
    rows = [[_fmt(s.get(c)) for c in cols] for s in summaries]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths, strict=True))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    return "-" if v is None else str(v)


def _demo_run(config: Any, path: Path, resume: bool) -> dict[str, Any]:
    """One demo run (in a worker process when the demo runs its methods side by side)."""
    from dualrl.o2o.loop import resume as resume_run
    from dualrl.o2o.loop import train
    from dualrl.utils import enable_compilation_cache

    enable_compilation_cache()
    return resume_run(path) if resume else train(config, path)


def cmd_demo(argv: list[str]) -> int:
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from dualrl.experiments.plots import plot_learning_curves
    from dualrl.flags import build_train_config
    from dualrl.o2o.rundir import RunDir, RunExistsError

    parser = _Parser(prog="dualrl demo",
                     description="DUAL and IQL on frozenlake-shift, side by side (CPU minutes)")
    parser.add_argument("--out", default=None, help="run directory (default runs/demo-<time>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--offline-steps", default=None, help="default: the preset's")
    parser.add_argument("--online-steps", default="10000",
                        help="default 10000 (the preset's 20k would take DUAL past the "
                             "demo's ten minutes on 2 cores); 'preset' for the preset's")
    parser.add_argument("--algos", default="dual,iql")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs trained at once, one process each (default: one per "
                             "method up to the CPU count; 1 = one after the other, here)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted demo in --out (its runs as saved)")
    args = parser.parse_args(argv)
    if args.resume and args.out is None:
        raise CLIError("dualrl demo: --resume needs --out DIR (the demo to continue)")
    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    algos = args.algos.split(",")
    jobs = args.jobs if args.jobs is not None else os.cpu_count() or 1
    if jobs < 1:
        raise CLIError(f"dualrl demo: --jobs must be at least 1, got {jobs}")
    jobs = min(jobs, len(algos))
    runs = {algo: RunDir(out / algo) for algo in algos}
    if args.resume and not out.is_dir():
        raise CLIError(f"dualrl demo: {out}: no demo to resume (no such directory)")
    if not args.resume:  # a new demo: only into a new or empty folder
        if any(r.exists() for r in runs.values()):
            raise RunExistsError(f"{out}: already holds a demo; pass --resume to continue it "
                                 "or choose another --out")
        RunDir(out).check_new()
    budget = [*(["--offline-steps", args.offline_steps] if args.offline_steps else []),
              *(["--online-steps", args.online_steps]
                if args.online_steps not in (None, "preset") else [])]
    work = []
    for i, algo in enumerate(algos):
        train_argv = ["--algo", algo, "--task", "frozenlake-shift", "--preset", args.preset,
                      "--seed", str(args.seed), *budget,
                      # side by side, one progress bar: the first (the longest) run's
                      *(["--progress", "false"] if jobs > 1 and i > 0 else [])]
        config, _ = build_train_config(train_argv)  # bad flags fail here, before any run
        work.append((config, runs[algo].path, args.resume and runs[algo].exists()))
    if jobs == 1:
        summaries = [_demo_run(*w) for w in work]
    else:
        print(f"dualrl demo: training {', '.join(algos)} side by side ({jobs} processes); "
              f"the progress bar is {algos[0]}'s", flush=True)
        # spawn, not fork: JAX's threads do not survive a fork
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            summaries = list(pool.map(_demo_run, *zip(*work, strict=True)))
    png = plot_learning_curves([out / a for a in algos],
                               out / "learning_curves.png", "frozenlake-shift (slip 0.0 → 0.3)",
                               offline_steps=config.loop.offline_steps)
    print()
    print("frozenlake-shift: slip 0.0 offline -> 0.3 online; score = 100 x success rate")
    print(format_table(summaries))
    print(f"runs written to {out}; learning curves: {png}")
    return 0


# --------------------------------------------------------------------- collect
COLLECTORS = ("frozenlake", "sac", "maze")


def cmd_collect(argv: list[str]) -> int:
    """`collect frozenlake` (ε-greedy Q-learning data) or `collect sac` (D4RL-style datasets)."""
    if not argv or argv[0] not in COLLECTORS:
        raise CLIError(f"dualrl collect: choose a collector; valid collectors: "
                       f"{', '.join(COLLECTORS)}")
    collector = {"frozenlake": _collect_frozenlake, "sac": _collect_sac, "maze": _collect_maze}
    return collector[argv[0]](argv[1:])


def _write_dataset(dataset, out: Path, overwrite: bool) -> None:
    """`.npz` -> dualrl's own format, anything else -> a D4RL HDF5 file."""
    from dualrl.data import save_npz, write_d4rl

    if out.suffix == ".npz":
        save_npz(dataset, out, overwrite=overwrite)
    else:
        write_d4rl(dataset, out, overwrite=overwrite)


def _collect_maze(argv: list[str]) -> int:
    """PD waypoint-controller data for a point maze (maze2d-style, SPEC §9)."""
    from dualrl.collect.waypoints import collect_maze
    from dualrl.envs.mazes import MAZES

    parser = _Parser(prog="dualrl collect maze", description=(
        "Drive the point mass to random goal cells with a PD controller over BFS waypoints and "
        "write the transitions; name the file maze2d-<maze>-v1.hdf5 in $DUALRL_DATA to train "
        "on task maze2d-<maze>-v1."))
    parser.add_argument("--maze", required=True, help=f"one of: {', '.join(MAZES)}")
    parser.add_argument("--out", required=True, help="FILE.hdf5 (D4RL format) or FILE.npz")
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--episode-steps", type=int, default=None,
                        help="cut the run into time-out episodes of this length "
                             "(default: the task's time limit)")
    parser.add_argument("--action-noise", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if args.maze not in MAZES:
        raise CLIError(f"dualrl collect maze: unknown maze '{args.maze}'; valid mazes: "
                       f"{', '.join(MAZES)}")
    t0 = time.perf_counter()
    try:
        dataset = collect_maze(args.maze, n_steps=args.steps, seed=args.seed,
                               episode_steps=args.episode_steps, action_noise=args.action_noise)
    except ValueError as e:
        raise CLIError(f"dualrl collect maze: {e}") from None
    _write_dataset(dataset, out, args.overwrite)
    meta = dataset.metadata
    print(f"wrote {len(dataset)} transitions, {dataset.num_episodes} episodes, "
          f"{meta.get('goals_reached', '?')} goals reached, to {out} "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


def _collect_frozenlake(argv: list[str]) -> int:
    from dualrl.collect.qlearning import collect_qlearning
    from dualrl.envs.frozenlake import FrozenLakeShiftEnv

    parser = _Parser(prog="dualrl collect frozenlake")
    parser.add_argument("--out", required=True, help="FILE.hdf5 (D4RL format) or FILE.npz")
    parser.add_argument("--slip", type=float, default=0.0)
    parser.add_argument("--map", default="8x8")
    parser.add_argument("--slippery", default=None)
    parser.add_argument("--time-limit", type=int, default=200)
    parser.add_argument("--obs", default="coords",
                        help="observations: coords ((row, col) in [0, 1]) or onehot (the cell; "
                             "what the cpu/paper presets train on: --env.obs onehot)")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--epsilon-start", type=float, default=1.0)
    parser.add_argument("--epsilon-end", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.overwrite:  # refuse before spending minutes collecting
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    try:
        env = FrozenLakeShiftEnv(desc=args.map, slip=args.slip, slippery=args.slippery,
                                 time_limit=args.time_limit, obs=args.obs)
        dataset = collect_qlearning(env, n_episodes=args.episodes,
                                    epsilon_start=args.epsilon_start,
                                    epsilon_end=args.epsilon_end, seed=args.seed)
    except ValueError as e:
        raise CLIError(f"dualrl collect frozenlake: {e}") from None
    _write_dataset(dataset, out, args.overwrite)
    print(f"wrote {len(dataset)} transitions, {dataset.num_episodes} episodes "
          f"(success rate {dataset.metadata.get('success_rate', float('nan')):.3f}) to {out}")
    return 0


def _collect_sac(argv: list[str]) -> int:
    """Train SAC on a locomotion robot and write its D4RL-style datasets (SPEC §9)."""
    from dualrl.collect.behaviour_datasets import (
        DATASET_NAMES,
        check_outputs_free,
        collect_sac_datasets,
    )
    from dualrl.collect.sac import SAC_PRESETS, sac_preset
    from dualrl.envs.locomotion import ROBOTS

    prog = "dualrl collect sac"
    parser = _Parser(prog=prog, description=(
        "Train SAC and write <robot>-{random,medium,medium-replay,expert,medium-expert}-v2.hdf5 "
        "into --out; an interrupted run resumes from <out>/<robot>-sac/checkpoints."))
    parser.add_argument("--env", required=True, help=f"robot: {', '.join(ROBOTS)}")
    parser.add_argument("--preset", default="small", help=f"budget: {', '.join(SAC_PRESETS)}")
    parser.add_argument("--out", required=True, help="output directory (the data directory)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="override the SAC steps")
    parser.add_argument("--dataset-size", type=int, default=None,
                        help="override the transitions per random/medium/expert dataset")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing datasets (and a checkpoint of another run)")
    args = parser.parse_args(argv)
    if args.env not in ROBOTS:
        raise CLIError(f"{prog}: unknown env '{args.env}'; valid envs: {', '.join(ROBOTS)}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"{prog}: --out {out} is a file; expected a directory")
    try:
        config = sac_preset(args.preset).with_budget(args.steps, args.dataset_size)
    except ValueError as e:
        raise CLIError(f"{prog}: {e}") from None
    try:
        check_outputs_free(out, args.env, overwrite=args.overwrite)  # before any output
    except IsADirectoryError as e:
        raise CLIError(f"{prog}: {e}") from None
    print(f"{prog}: {args.env}, preset {config.preset}, {config.total_steps} SAC steps, "
          f"{config.dataset_size} transitions per dataset, seed {args.seed} -> {out}",
          flush=True)
    try:
        report = collect_sac_datasets(args.env, config, out, seed=args.seed,
                                      overwrite=args.overwrite,
                                      log=lambda msg: print(msg, flush=True))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; run the same command again to resume from the last "
              "checkpoint", file=sys.stderr)
        return 130
    summary = report.summary
    seconds = summary["seconds"]
    resumed = (f", resumed at step {summary['resumed_at_step']}"
               if summary["resumed_at_step"] else "")
    print(f"\n{args.env}: {summary['sac_steps']} SAC steps{resumed}; expert snapshot eval "
          f"return {summary['expert_eval_return']:.1f}")
    print(f"{'dataset':<15}{'transitions':>12}{'episodes':>10}{'return':>10}{'score':>8}"
          f"{'snapshot':>10}")
    for name in DATASET_NAMES:
        row = summary["datasets"][name]
        step = "-" if row["snapshot_step"] is None else str(row["snapshot_step"])
        print(f"{name:<15}{row['n_transitions']:>12}{row['n_episodes']:>10}"
              f"{row['source_policy_return']:>10.1f}{row['source_policy_score']:>8.1f}{step:>10}")
    print(f"time: {seconds['total']:.0f} s (SAC {seconds['sac_train_this_session']:.0f} s, "
          f"datasets {seconds['datasets_collect'] + seconds['datasets_write']:.0f} s); "
          f"files in {out}")
    return 0


# ------------------------------------------------------------------------ info
def cmd_info(argv: list[str]) -> int:
    from dualrl.data import format_summary, load_dataset, summarize

    parser = _Parser(prog="dualrl info")
    parser.add_argument("path")
    args = parser.parse_args(argv)
    print(format_summary(summarize(load_dataset(args.path))))
    return 0


# --------------------------------------------------------------------- planner
def cmd_planner(argv: list[str]) -> int:
    """`planner fit` trains the trajectory planner; `planner distill` distils it to 1 step."""
    from dualrl.config import PRESET_NAMES, apply_overrides
    from dualrl.diffusion import DistillConfig, PlannerConfig
    from dualrl.envs import UnknownTaskError, get_task
    from dualrl.flags import class_flags, parse_flags
    from dualrl.stages import DISTILL_PRESETS, PLANNER_PRESETS, distill_planner, fit_planner

    actions = ("fit", "distill")
    if not argv or argv[0] not in actions:
        raise CLIError(f"dualrl planner: choose an action; valid actions: {', '.join(actions)}")
    action, prog = argv[0], f"dualrl planner {argv[0]}"
    base = _Parser(prog=prog, add_help=False)
    base.add_argument("--task", default="frozenlake-noshift")
    base.add_argument("--out", required=True)
    base.add_argument("--seed", type=int, default=0)
    base.add_argument("--preset", default="cpu")
    base.add_argument("--dataset", default=None)
    base.add_argument("--eval-episodes", type=int, default=100)
    base.add_argument("--progress", default="true")
    known, rest = base.parse_known_args(argv[1:])
    if known.preset not in PRESET_NAMES:
        raise CLIError(f"{prog}: unknown preset '{known.preset}'; "
                       f"valid presets: {', '.join(PRESET_NAMES)}")
    fixed = ["--task", "--out", "--seed", "--preset", "--dataset", "--eval-episodes",
             "--progress"]
    if action == "fit":
        try:
            spec = get_task(known.task)
        except UnknownTaskError as e:
            raise CLIError(f"{prog}: {e}") from None
        flags = {**class_flags("planner", "planner.", PlannerConfig),
                 **class_flags("env", "env.", type(spec.params))}
        over = parse_flags(prog, rest, flags, fixed, ("planner", "env"))
        preset = PLANNER_PRESETS.get(spec.family, {}).get(known.preset, {})
        try:
            config = apply_overrides(PlannerConfig(), {**preset, **over["planner"]})
            spec.resolve(**over["env"])
        except (TypeError, ValueError) as e:
            raise CLIError(f"{prog}: {e}") from None
        info = fit_planner(known.task, known.out, config, seed=known.seed,
                           dataset=known.dataset, env_overrides=over["env"],
                           eval_episodes=known.eval_episodes,
                           progress=known.progress.lower() in ("1", "true", "yes"))
        ev = info["teacher_policy_eval"]
        print(f"planner trained on {known.task}: final loss {info['final_loss']:.4f}; "
              f"teacher policy ({config.teacher_steps} DDIM steps) score {ev['score']:.1f} "
              f"in the data's environment; saved to {known.out}")
        return 0
    flags = class_flags("distill", "distill.", DistillConfig)
    over = parse_flags(prog, rest, flags, fixed, ("distill",))
    try:
        config = apply_overrides(DistillConfig(),
                                 {**DISTILL_PRESETS[known.preset], **over["distill"]})
    except (TypeError, ValueError) as e:
        raise CLIError(f"{prog}: {e}") from None
    summary = distill_planner(known.out, config, seed=known.seed,
                              eval_episodes=known.eval_episodes)
    for r in summary["rounds"]:
        print(f"  {r['teacher_steps']:>3} -> {r['student_steps']:>2} steps: policy rel. MSE "
              f"{r['policy_rel_mse']:.4f}, transition rel. MSE {r['transition_rel_mse']:.4f}")
    last = summary["rounds"][-1]
    print(f"  1-step student vs the {summary['rounds'][0]['teacher_steps']}-step teacher: policy "
          f"rel. MSE {last['policy_rel_mse_to_teacher']:.4f}, transition rel. MSE "
          f"{last['transition_rel_mse_to_teacher']:.4f}")
    print(f"1-step student policy score {summary['student_policy_eval']['score']:.1f}; "
          f"saved to {known.out}")
    return 0


# ----------------------------------------------------------------------- bench
def cmd_bench(argv: list[str]) -> int:
    benches = ("throughput", "latency", "efficiency")
    if not argv or argv[0] not in benches:
        raise CLIError(f"dualrl bench: choose a benchmark; valid benchmarks: {', '.join(benches)}")
    from dualrl.bench import efficiency, latency, throughput

    module = {"throughput": throughput, "latency": latency, "efficiency": efficiency}[argv[0]]
    try:
        return module.main(argv[1:])
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(f"dualrl bench {argv[0]}: {e}") from None


def cmd_sweep(argv: list[str]) -> int:
    from dualrl.experiments import sweep
    from dualrl.experiments.spec import SpecError

    try:
        return sweep.main(argv)
    except SpecError as e:
        raise CLIError(str(e)) from None
    except KeyboardInterrupt:
        print("dualrl sweep: interrupted; run the same command again to continue the sweep",
              file=sys.stderr)
        return 130


def cmd_report(argv: list[str]) -> int:
    from dualrl.experiments import report

    return report.main(argv)


HANDLERS = {
    "train": cmd_train,
    "demo": cmd_demo,
    "sweep": cmd_sweep,
    "report": cmd_report,
    "collect": cmd_collect,
    "info": cmd_info,
    "planner": cmd_planner,
    "bench": cmd_bench,
}


def _one_line(e: BaseException) -> str:
    """An exception as one line: OS errors as 'PATH: cause', others by their message."""
    if isinstance(e, OSError) and e.filename is not None:
        where = str(e.filename) + (f" -> {e.filename2}" if e.filename2 else "")
        return f"{where}: {e.strerror or e}"
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("DUALRL_DEBUG", "").lower() in ("1", "true", "yes")
    if "--debug" in argv:
        argv.remove("--debug")
        debug = True
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command = argv[0]
    if command not in HANDLERS:
        print(f"dualrl: unknown command '{command}'; valid commands: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    from dualrl.data.dataset import DatasetError
    from dualrl.flags import ConfigError
    from dualrl.o2o.checkpoint import CheckpointError
    from dualrl.o2o.loggers import LoggerError
    from dualrl.o2o.loop import DivergenceError
    from dualrl.o2o.rundir import RunDirError
    from dualrl.utils import enable_compilation_cache

    enable_compilation_cache()

    try:
        return HANDLERS[command](argv[1:])
    except (CLIError, ConfigError) as e:
        if debug:
            raise
        print(str(e), file=sys.stderr)
        return 2
    except (DatasetError, CheckpointError, RunDirError, LoggerError, FileExistsError,
            FileNotFoundError) as e:
        if debug:
            raise
        print(f"dualrl {command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except (DivergenceError, OSError) as e:  # OSError: disk full, read-only, permissions...
        if debug:
            raise
        print(f"dualrl {command}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dualrl {command}: interrupted; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

