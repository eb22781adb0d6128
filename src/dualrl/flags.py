"""Train flags → TrainConfig: the one parser behind `dualrl train`, sweep specs and scripts.

    config, options = build_train_config(["--algo", "dual", "--task", "frozenlake-shift",
                                          "--preset", "quick", "--dual.shift-weight", "0.5"])

Every config field is a flag: loop fields as `--offline-steps 1000`, algorithm fields as
`--iql.expectile 0.9`, task parameters as `--env.slip-online 0.5`; the paper's ablation
switches (`--no-distill`, `--shift-weight W`, ...) expand to their fields. Defaults ← the task
family's preset ← flags. Bad flags raise `ConfigError`, one line naming the flag.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn


class ConfigError(ValueError):
    """A bad flag or value: one line, meant for the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message}")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def parse_flags(prog: str, rest: list[str], flags: dict[str, tuple[str, Any]],
                fixed: list[str], groups: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`--name value` / `--name=value` pairs into {group: {field: typed value}}; unknown
    names fail in one line listing every valid option."""
    from dualrl.config import parse_value

    overrides: dict[str, dict[str, Any]] = {g: {} for g in groups}
    i = 0
    while i < len(rest):
        token = rest[i]
        name, _, inline = token.partition("=")
        if name not in flags:
            raise ConfigError(
                f"{prog}: unknown option '{name}'; valid options: "
                f"{' '.join(fixed + sorted(flags))}"
            )
        if inline == "" and "=" not in token:
            if i + 1 >= len(rest):
                raise ConfigError(f"{prog}: option '{name}' needs a value")
            inline = rest[i + 1]
            i += 1
        dest, tp = flags[name]
        group, field_name = dest.split(":")
        try:
            overrides[group][field_name] = parse_value(inline, tp, name)
        except ValueError as e:
            raise ConfigError(f"{prog}: {e}") from None
        i += 1
    return overrides


def class_flags(prefix: str, flag_prefix: str, cls: type) -> dict[str, tuple[str, Any]]:
    from dualrl.config import field_types

    return {f"--{flag_prefix}{_flag(name)}": (f"{prefix}:{name}", tp)
            for name, tp in field_types(cls).items()}


def train_flags(task: str, algo: str) -> dict[str, tuple[str, Any]]:
    """Every overridable field: loop fields bare, `--<algo>.x` and `--env.x`."""
    from dualrl.algos import get_algo
    from dualrl.config import LoopConfig
    from dualrl.envs import get_task

    agent_cls, _ = get_algo(algo)
    return {
        **class_flags("loop", "", LoopConfig),
        **class_flags("agent", f"{algo}.", agent_cls),
        **class_flags("env", "env.", type(get_task(task).params)),
    }


# Ablation switches of the paper (SPEC §10) as short flags: flag -> (expanded, needs value)
ABLATION_FLAGS = {
    "--no-planner": ["--dual.use-planner", "false"],
    "--no-distill": ["--dual.distill", "false"],
    "--no-epistemic": ["--dual.epistemic", "false"],
    "--freeze-transition": ["--dual.freeze-transition", "true"],
    "--shift-weight": ["--dual.shift-weight"],
    "--uq": ["--dual.uq"],
    "--laplace": ["--{algo}.laplace", "true"],  # the base method's actor ("IQL w LA", ...)
    "--distill": ["--{algo}.distill", "true"],  # D-Diff-QL, D-DACER, D-Diffuser (DUAL: default)
}


# `--distill` on a diffusion-policy baseline also sets its sampling steps to a power of two
# (progressive distillation halves them to 1): placed first, so an explicit --<algo>.steps wins
DISTILL_STEPS = {"diffql": 4, "dacer": 16, "diffuser": 16}


def _given_algo(argv: list[str]) -> str:
    """The `--algo` of a command line (the default when absent), for the short flags."""
    for i, token in enumerate(argv):
        if token.startswith("--algo="):
            return token.split("=", 1)[1]
        if token == "--algo" and i + 1 < len(argv):
            return argv[i + 1]
    return TRAIN_DEFAULTS["algo"]


def expand_ablation_flags(argv: list[str]) -> list[str]:
    out = []
    algo = _given_algo(argv)
    if "--distill" in argv and algo in DISTILL_STEPS:
        out += [f"--{algo}.steps", str(DISTILL_STEPS[algo])]
    for token in argv:
        name = token.split("=", 1)[0]
        if name in ABLATION_FLAGS:
            expanded = [part.format(algo=algo) for part in ABLATION_FLAGS[name]]
            out += expanded if "=" not in token else [expanded[0], token.split("=", 1)[1]]
        else:
            out.append(token)
    return out


TRAIN_OPTIONS = ["--task", "--algo", "--seed", "--preset", "--dataset", "--out", "--resume",
                 "--accept-data-change", "--vmap-seeds"]
TRAIN_DEFAULTS = {"task": "frozenlake-shift", "algo": "iql", "seed": 0, "preset": "cpu"}


def parse_train_options(argv: list[str], prog: str = "dualrl train"
                        ) -> tuple[argparse.Namespace, list[str]]:
    """The fixed options (None where not given) and the config flags left over."""
    base = _Parser(prog=prog, add_help=False)
    base.add_argument("--task", default=None)
    base.add_argument("--algo", default=None)
    base.add_argument("--seed", type=int, default=None)
    base.add_argument("--preset", default=None)
    base.add_argument("--dataset", default=None)
    base.add_argument("--out", default=None)
    base.add_argument("--resume", action="store_true")
    base.add_argument("--accept-data-change", action="store_true")
    base.add_argument("--vmap-seeds", type=int, default=None)
    base.add_argument("-h", "--help", action="store_true")
    return base.parse_known_args(expand_ablation_flags(argv))


def build_train_config(argv: list[str], prog: str = "dualrl train"):
    """Resolve defaults ← task-family preset ← flags into (TrainConfig, the fixed options:
    task, algo, seed, preset, dataset, out, resume). `prog` starts every error line."""
    from dualrl.algos import algo_names, get_algo
    from dualrl.config import (
        PRESET_NAMES,
        LoopConfig,
        TrainConfig,
        apply_overrides,
        preset_agent_overrides,
        preset_overrides,
    )
    from dualrl.envs import UnknownTaskError, get_task

    known, rest = parse_train_options(argv, prog)
    for name, default in TRAIN_DEFAULTS.items():
        if getattr(known, name) is None:
            setattr(known, name, default)
    try:
        get_task(known.task)
    except UnknownTaskError as e:
        raise ConfigError(f"{prog}: {e}") from None
    if known.algo not in algo_names():
        raise ConfigError(
            f"{prog}: unknown algo '{known.algo}'; valid algos: {', '.join(algo_names())}"
        )
    if known.preset not in PRESET_NAMES:
        raise ConfigError(
            f"{prog}: unknown preset '{known.preset}'; "
            f"valid presets: {', '.join(PRESET_NAMES)}"
        )

    flags = train_flags(known.task, known.algo)
    overrides = parse_flags(prog, rest, flags, TRAIN_OPTIONS, ("loop", "agent", "env"))

    spec = get_task(known.task)
    preset = preset_overrides(spec.family, known.preset)
    agent_cls, agent_impl = get_algo(known.algo)
    try:
        # the critic an actor sits on (DUAL's --dual.critic) brings its method's preset group
        critic = overrides["agent"].get("critic", preset.get(known.algo, {}).get("critic"))
        agent = apply_overrides(agent_cls(), {
            **preset_agent_overrides(preset, known.algo, agent_cls, critic),
            **overrides["agent"]})
        # the task preset's loop, the method's own loop settings (e.g. SO2's 10 updates per
        # online step), the user's flags
        loop = apply_overrides(LoopConfig(), {**preset.get("loop", {}),
                                              **agent_impl.loop_defaults_for(agent),
                                              **overrides["loop"]})
        env = {**preset.get("env", {}), **overrides["env"]}
        params = spec.resolve(**env)
        for phase in ("offline", "online"):  # bad task parameter values fail here, not mid-run
            spec.env_factory(params, phase).close()
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prog}: {e}") from None
    config = TrainConfig(
        task=known.task, algo=known.algo, seed=known.seed, preset=known.preset,
        dataset=known.dataset, loop=loop, agent=agent, env=env,
    )
    return config, known


def check_resume_flags(argv: list[str], saved: dict[str, Any], config_file: Path) -> None:
    """`train ... --resume` may repeat the original command: every flag given must match
    the run's config.json (only those given are compared); one line lists those that
    don't. `--dataset` is compared by where it points; a moved file of the same data is
    accepted by the data check that follows."""
    from dualrl.algos import get_algo
    from dualrl.config import config_from_dict
    from dualrl.envs import get_task, has_task

    known, rest = parse_train_options(argv)
    if known.help:
        raise ConfigError("dualrl train: --help and --resume do not go together")
    differ = []
    for name in TRAIN_DEFAULTS:
        given = getattr(known, name)
        if given is not None and given != saved.get(name):
            differ.append(f"--{name} {given} (the run has {saved.get(name)})")
    if known.task not in (None, saved.get("task")) or known.algo not in (None, saved.get("algo")):
        # the config flags cannot even be read against the run
        raise ConfigError(f"dualrl train: --resume: {'; '.join(differ)} in {config_file}; drop "
                       "the flags to continue the run as saved, or choose another --out")
    if not has_task(saved.get("task")):
        raise ConfigError(f"dualrl train: {config_file}: unknown task '{saved.get('task')}'")
    flags = train_flags(saved["task"], saved["algo"])
    overrides = parse_flags("dualrl train", rest, flags, TRAIN_OPTIONS, ("loop", "agent", "env"))
    agent_cls, _ = get_algo(saved["algo"])
    try:
        cfg = config_from_dict(saved, agent_cls)
        env_params = get_task(cfg.task).resolve(**cfg.env)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"dualrl train: {config_file}: not a valid run configuration ({e})") \
            from None
    holders = {"loop": cfg.loop, "agent": cfg.agent, "env": env_params}
    by_dest = {dest: flag for flag, (dest, _) in flags.items()}
    for group, values in overrides.items():
        for field_name, value in values.items():
            have = getattr(holders[group], field_name)
            if _jsonable(value) != _jsonable(have):
                differ.append(f"{by_dest[f'{group}:{field_name}']} {_show(value)} "
                              f"(the run has {_show(have)})")
    if differ:
        raise ConfigError(f"dualrl train: --resume: {'; '.join(differ)} in {config_file}; drop "
                       "the flags to continue the run as saved, or choose another --out")


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)
