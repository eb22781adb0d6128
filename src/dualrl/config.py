"""Typed run configuration, presets per task family, and string overrides for the CLI.

Algorithm configs live beside their algorithm (e.g. `algos.iql.IQLConfig`) but are plain
dataclasses with no behaviour; this module composes them into one `TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

PRESET_NAMES = ("quick", "cpu", "paper")


@dataclass
class LoopConfig:
    """The O2O protocol (SPEC §1); defaults are the paper's full-scale budget."""

    offline_steps: int = 1_000_000
    online_steps: int = 1_000_000
    batch_size: int = 256
    utd: int = 1  # gradient updates per online environment step
    online_ratio: float | None = None  # None: uniform over D_off ∪ D_on; else online share
    # > 0 (with online_ratio): the online share is drawn from the newest this-many online
    # transitions only, so an advantage-weighted actor sees its recent policy's actions
    online_window: int = 0
    # > 0 (with online_ratio): the online share ramps up linearly until this many online
    # transitions exist (a tiny online buffer at a large share is replayed to death)
    online_warmup: int = 0
    # with online_ratio: the rest of each batch comes from all of B = D_off ∪ D_on instead of
    # D_off (SO2's concat batches: fresh online rows joined with samples of B)
    rest_from_all: bool = False
    # OFF2ON's balanced replay (data/balanced_replay.py), online only: the uniform draws of
    # every batch follow density-ratio priorities, so offline rows like the online ones are
    # replayed more; T flattens the ratio, f is the first online rows' share of the draws
    balanced_replay: bool = False
    balanced_temperature: float = 5.0
    balanced_online_fraction: float = 0.5
    # Online only: with this probability an exploratory action is replaced by one drawn
    # uniformly from the action space (one-hot moves: a uniform random move). A floor under
    # every method's exploration: an advantage-weighted actor's learned std shrinks as β
    # grows, and the moves it then never tries are the ones its critic cannot learn.
    explore_epsilon: float = 0.0
    eval_every: int = 10_000
    eval_episodes: int = 10
    checkpoint_every: int = 50_000
    # checkpoints kept in the run directory (the newest); more keep the policy at every
    # checkpoint for later analysis (e.g. scripts/frozenlake_actor_map.py)
    keep_checkpoints: int = 2
    scan_chunk: int = 1_000  # offline updates fused in one jitted lax.scan call
    reward_scale: float = 1.0
    reward_bias: float = 0.0
    # "returns": rewards x 1000 / (max - min episode return of D_off), IQL's and CORL's recipe
    # for D4RL locomotion; applied after reward_scale/reward_bias, online too. "none": as is.
    reward_normalization: str = "none"
    normalize_obs: bool = True
    progress: bool = True
    # besides metrics.jsonl (always): "tensorboard" and/or "wandb" (dualrl.o2o.loggers)
    loggers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Values the loop cannot run with (0 would divide by zero, hang or index nothing).
        minimum = dict(offline_steps=0, online_steps=0, online_window=0, online_warmup=0,
                       batch_size=1, utd=1,
                       eval_every=1, eval_episodes=1, checkpoint_every=1, keep_checkpoints=1,
                       scan_chunk=1)
        for name, low in minimum.items():
            if getattr(self, name) < low:
                flag = name.replace("_", "-")
                raise ValueError(f"{name} (--{flag}) must be >= {low}, got {getattr(self, name)}")
        if self.reward_normalization not in ("none", "returns"):
            raise ValueError("reward_normalization (--reward-normalization) must be 'none' or "
                             f"'returns', got '{self.reward_normalization}'")
        if not 0.0 <= self.explore_epsilon <= 1.0:
            raise ValueError("explore_epsilon (--explore-epsilon) must be in [0, 1], got "
                             f"{self.explore_epsilon}")
        from dualrl.o2o.loggers import LOGGER_NAMES

        unknown = sorted(set(self.loggers) - set(LOGGER_NAMES))
        if unknown:
            raise ValueError(f"loggers (--loggers): unknown {', '.join(unknown)}; valid: "
                             f"{', '.join(LOGGER_NAMES)}")
        if self.balanced_replay:
            self.balanced  # noqa: B018 -- validates the estimator's settings
        ratio = self.online_ratio
        if ratio is not None and not 0.0 <= ratio <= 1.0:
            raise ValueError(
                f"online_ratio (--online-ratio) must be in [0, 1] or none, got {ratio}"
            )

    @property
    def batch_mix(self):
        from dualrl.data.buffer import BatchMix

        return BatchMix(self.online_ratio, self.online_window, self.online_warmup,
                        self.rest_from_all, self.balanced_replay)

    @property
    def balanced(self):
        """The balanced-replay estimator this protocol asks for, or None."""
        if not self.balanced_replay:
            return None
        from dualrl.data.balanced_replay import BalancedReplay

        return BalancedReplay(temperature=self.balanced_temperature,
                              online_fraction=self.balanced_online_fraction)


@dataclass
class TrainConfig:
    task: str = "frozenlake-shift"
    algo: str = "iql"
    seed: int = 0
    preset: str = "cpu"
    dataset: str | None = None  # a D4RL HDF5 file, Minari folder or .npz; None: the task's own
    loop: LoopConfig = field(default_factory=LoopConfig)
    agent: Any = None  # the algorithm's config dataclass
    env: dict[str, Any] = field(default_factory=dict)  # task parameter overrides

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "algo": self.algo,
            "seed": self.seed,
            "preset": self.preset,
            "dataset": self.dataset,
            "loop": dataclasses.asdict(self.loop),
            "agent": dataclasses.asdict(self.agent) if self.agent is not None else {},
            "env": dict(self.env),
        }


# Presets per task family: {family: {preset: {"loop": {...}, "agent": {...}, "env": {...},
# "<algo>": {...}}}}: "agent" applies to every algorithm, "<algo>" only to that one.
PRESETS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "frozenlake": {
        # expectile 0.9 over-estimates through Frozen-Lake's wall self-loops (V drifted to
        # 1.5 > max return 1 in 10k updates); 0.7 stays calibrated.
        "quick": {
            "loop": dict(offline_steps=10_000, online_steps=2_000, eval_every=1_000,
                         eval_episodes=50, checkpoint_every=2_000, scan_chunk=1_000),
            "agent": dict(hidden=(64, 64), expectile=0.7, beta=10.0),
            "dual": dict(horizon=8, planner_hidden=(128, 128), planner_steps=3_000,
                         distill_steps_per_round=300, refit_every=500, fit_samples=20_000),
            "env": dict(data_episodes=1_000),
        },
        # The online protocol of docs/results/frozenlake_online.md (issue 12, second round),
        # shared by every method: one-hot cell observations (the (row, col) critic
        # over-estimated through walls and holes and collapsed online); the online share of
        # each batch ramps from 0 to 100 % over the first 5k online steps (the slip-0 rows
        # otherwise pull Q toward the offline world: at 25 % they held Q(DOWN) at (6, 7) at
        # 0.87 where the slip-0.3 value is 0.83, and a tiny online buffer at a large share
        # at once broke the critic); expectile 0.99 (at 0.9 V follows the data's own moves
        # and a wall-hugging move's improvement gap is ~0.01); β 100 (the advantage-weighted
        # actor flips a move only when β·ΔA > ln(count ratio)); 2 updates per online step;
        # ε 0.1 uniform moves (β 100 shrinks the actor's std until the moves the critic must
        # learn are never tried); Q and V targets clipped to the return range [0, 1] (round
        # 3: on frozenlake-narrow's near-greedy data expectile 0.99 lifted V(start) to 1.2-1.6
        # offline and IQL then scored 0 on 4 of 5 seeds).
        "cpu": {
            "loop": dict(offline_steps=10_000, online_steps=20_000, eval_every=2_500,
                         eval_episodes=100, checkpoint_every=5_000, scan_chunk=1_000,
                         online_ratio=1.0, online_warmup=5_000, utd=2, explore_epsilon=0.1,
                         normalize_obs=False),
            "agent": dict(hidden=(128, 128), expectile=0.99, beta=100.0, value_min=0.0,
                          value_max=1.0),
            "dual": dict(horizon=8, planner_hidden=(128, 128), planner_steps=10_000,
                         distill_steps_per_round=1_500, refit_every=2_000),
            "env": dict(obs="onehot"),
        },
        "paper": {
            "loop": dict(offline_steps=1_000_000, online_steps=1_000_000, eval_every=10_000,
                         eval_episodes=100, checkpoint_every=50_000, online_ratio=1.0,
                         online_warmup=5_000, utd=2, explore_epsilon=0.1, normalize_obs=False),
            "agent": dict(expectile=0.99, beta=100.0, value_min=0.0, value_max=1.0),
            "env": dict(obs="onehot"),
        },
    },
    # D4RL/ODRL MuJoCo locomotion (SPEC §7: expectile 0.7, beta 3; rewards normalised by the
    # spread of episode returns, as IQL/CORL do). "cpu" is the budget of
    # docs/results/locomotion.md; "paper" is CORL's 1M + 1M.
    "locomotion": {
        "quick": {
            "loop": dict(offline_steps=2_000, online_steps=1_000, eval_every=1_000,
                         eval_episodes=2, checkpoint_every=1_000, scan_chunk=500,
                         reward_normalization="returns"),
            "agent": dict(hidden=(64, 64), expectile=0.7, beta=3.0),
            "dual": dict(horizon=4, planner_hidden=(128, 128), planner_steps=1_000,
                         distill_steps_per_round=100, refit_every=500, fit_samples=10_000),
            "env": {},
        },
        "cpu": {
            "loop": dict(offline_steps=30_000, online_steps=20_000, eval_every=5_000,
                         eval_episodes=5, checkpoint_every=10_000, scan_chunk=1_000,
                         reward_normalization="returns"),
            "agent": dict(expectile=0.7, beta=3.0),
            "dual": dict(horizon=4, planner_hidden=(256, 256), planner_steps=10_000,
                         distill_steps_per_round=1_000, refit_every=5_000),
            "env": {},
        },
        "paper": {
            "loop": dict(offline_steps=1_000_000, online_steps=1_000_000, eval_every=10_000,
                         eval_episodes=10, checkpoint_every=50_000,
                         reward_normalization="returns"),
            "agent": dict(expectile=0.7, beta=3.0),
            "dual": dict(horizon=4),
            "env": {},
        },
    },
}
# AntMaze / Adroit / maze2d (SPEC §7): IQL's per-domain expectile and beta; antmaze rewards
# shifted by -1 (IQL's recipe: 0 at the goal, -1 elsewhere).
for _family, _agent, _loop in (
    ("antmaze", dict(expectile=0.9, beta=10.0), dict(reward_bias=-1.0)),
    ("adroit", dict(expectile=0.8, beta=3.0), dict(reward_normalization="returns")),
    ("maze2d", dict(expectile=0.7, beta=3.0), dict(reward_normalization="none")),
):
    PRESETS[_family] = {
        "quick": {"loop": dict(offline_steps=2_000, online_steps=1_000, eval_every=1_000,
                               eval_episodes=2, checkpoint_every=1_000, scan_chunk=500, **_loop),
                  "agent": dict(hidden=(64, 64), **_agent),
                  "dual": dict(horizon=8, planner_hidden=(128, 128), planner_steps=1_000,
                               distill_steps_per_round=100, refit_every=500,
                               fit_samples=10_000),
                  "env": {}},
        "cpu": {"loop": dict(offline_steps=30_000, online_steps=20_000, eval_every=5_000,
                             eval_episodes=10, checkpoint_every=10_000, **_loop),
                "agent": dict(_agent),
                "dual": dict(horizon=16 if _family != "adroit" else 4,
                             planner_hidden=(256, 256), planner_steps=10_000,
                             distill_steps_per_round=1_000, refit_every=5_000),
                "env": {}},
        "paper": {"loop": dict(offline_steps=1_000_000, online_steps=1_000_000,
                               eval_every=10_000, eval_episodes=100 if _family == "antmaze"
                               else 10, checkpoint_every=50_000, **_loop),
                  "agent": dict(_agent), "env": {}},
    }


# Cal-QL per family: CORL's finetune/cal_ql configs (AntMaze: α_cql 5 with Lagrange at gap 0.8,
# 5-layer Q, r·10 − 5 written on top of the loop's r − 1; Adroit: α_cql 1, 3-layer Q;
# locomotion: the defaults, 2-layer Q, policy lr 3e-5). Frozen-Lake (sparse 0/1 rewards, our
# task): AntMaze's sparse-task settings without the Lagrange term, on the task's widths.
_CALQL = {
    "antmaze": dict(cql_alpha=5.0, cql_alpha_online=5.0, lagrange=True, target_action_gap=0.8,
                    max_target_backup=True, clip_diff_min=-200.0, actor_lr=1e-4,
                    sparse_reward=True, reward_scale=10.0, reward_bias=5.0),
    "adroit": dict(cql_alpha=1.0, cql_alpha_online=1.0, max_target_backup=True,
                   clip_diff_min=-200.0, actor_lr=1e-4),
    "frozenlake": dict(cql_alpha=5.0, cql_alpha_online=5.0, max_target_backup=True,
                       clip_diff_min=-200.0, actor_lr=1e-4, sparse_reward=True),
}
_CALQL_DEPTH = {"antmaze": 5, "adroit": 3}
# SO2 on Frozen-Lake: targets in the return range [0, 1] (the shared protocol's clip, which
# the cpu / paper presets give every method) and no entropy bonus in the backup. Measured on
# the quick preset: with the bonus and no clip, the 10-member SAC-N critic diverged offline
# (Q 4 -> 2.8e5 in 10k updates; score 0); with both, it stayed at Q ~ 0.01-0.03.
_SO2 = {"frozenlake": dict(backup_entropy=False, value_min=0.0, value_max=1.0)}
for _family, _presets in PRESETS.items():
    for _name, _preset in _presets.items():
        _calql, _so2 = dict(_CALQL.get(_family, {})), dict(_SO2.get(_family, {}))
        width = _preset.get("agent", {}).get("hidden", (256, 256))[0]
        if _name == "quick" or _family == "frozenlake":  # the task's small widths
            _calql["actor_hidden"] = _so2["actor_hidden"] = (width, width)
        elif _family in _CALQL_DEPTH:
            _calql["hidden"] = (256,) * _CALQL_DEPTH[_family]
        _preset["calql"], _preset["so2"] = _calql, _so2


# Diff-QL per family: the reference's table (gradient-norm clip 9 on hopper / halfcheetah
# medium, η 1 locomotion; AntMaze η 0.5-4.5 with the max-Q backup from umaze-diverse on, as
# its per-dataset rows; Adroit pen η 0.1-0.15, lr 3e-5). The denoiser keeps its 3 layers at
# the task's width where the task's networks are small (Frozen-Lake, quick presets); the
# Laplace fit draws `weight_samples` 5-step policy samples per row, so it fits on fewer rows.
_DIFFQL = {
    "locomotion": dict(grad_norm=9.0),
    "antmaze": dict(eta=2.0, grad_norm=3.0, max_q_backup=True),
    "adroit": dict(eta=0.15, grad_norm=7.0, actor_lr=3e-5, critic_lr=3e-5),
}
for _family, _presets in PRESETS.items():
    for _name, _preset in _presets.items():
        _diffql = dict(_DIFFQL.get(_family, {}), fit_samples=20_000)
        width = _preset.get("agent", {}).get("hidden", (256, 256))[0]
        if _name == "quick" or _family == "frozenlake":
            _diffql["actor_hidden"] = (width,) * 3
        if _name == "quick":
            _diffql.update(fit_samples=2_000, refit_every=500, candidates=10)
        _preset["diffql"] = _diffql
        # DACER: Diff-QL's policy and families, its own steps / lrs / clip (class defaults);
        # fewer entropy states and samples on the small presets (the fit is the costly part)
        _dacer = {k: v for k, v in _diffql.items()
                  if k not in ("grad_norm", "actor_lr", "critic_lr")}
        if _name == "quick":
            _dacer.update(steps=5, entropy_every=250, entropy_samples=50, entropy_states=16)
        elif _name == "cpu":
            _dacer.update(entropy_every=2_500)
        _preset["dacer"] = _dacer
        # Diffuser: DUAL's planner (horizon and widths of the task's preset: "the same
        # planner"), the task's critic widths for its bootstrap value and its guide; fewer
        # candidate plans and shorter distillation rounds on the quick presets
        _dual = _preset.get("dual", {})
        _diffuser = {k: _dual[k] for k in ("horizon", "planner_hidden") if k in _dual}
        if _name == "quick" or _family == "frozenlake":
            _diffuser["returns_hidden"] = (width, width)
        if _name == "quick":
            _diffuser.update(candidates=16, distill_steps_per_round=200)
        _preset["diffuser"] = _diffuser
        # EDIS (on IQL, on Cal-QL with Cal-QL's group) and DUAL's augmentation: generator and
        # energies at the task's widths; retrained 4× within the cpu online budget (the
        # reference's every 10k of 1M); small pools and short fits on the quick presets
        _edis: dict[str, Any] = {}
        if _name == "quick" or _family == "frozenlake":
            _edis.update(generator_hidden=(width,) * 3, energy_hidden=(width, width))
        if _name == "quick":
            _edis.update(retrain_every=500, generator_steps=500, energy_steps=100,
                         synthetic_size=1_000, energy_rows=256)
        elif _name == "cpu":
            _edis.update(retrain_every=5_000, generator_steps=5_000, energy_steps=500)
        _preset["edis"] = _edis
        _preset["edis-calql"] = {**_preset["calql"], **_edis}
        _preset["dual"] = {**_edis, **_preset.get("dual", {})}


def preset_overrides(family: str, preset: str) -> dict[str, dict[str, Any]]:
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset '{preset}'; valid presets: {', '.join(PRESET_NAMES)}")
    return PRESETS.get(family, {}).get(preset, {"loop": {}, "agent": {}, "env": {}})


# a SAC-family method's config fields that are about its own actor, not its critic: left out
# where DUAL sits on that critic (its preset group, `algos.dual.dual_critic_config`)
SAC_ACTOR_FIELDS = frozenset({"actor_hidden", "actor_lr", "laplace", "orthogonal"})


def preset_agent_overrides(preset: dict[str, dict[str, Any]], algo: str,
                           config_cls: type, critic: str | None = None) -> dict[str, Any]:
    """A preset's agent fields for one method: its shared "agent" entries that the method's
    config has (IQL's expectile means nothing to Cal-QL), then — for DUAL on `critic` — that
    critic's method group (its critic settings only), then the method's own group."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    shared = {k: v for k, v in preset.get("agent", {}).items() if k in names}
    critic_group = {}
    if critic is not None and critic != algo:
        critic_group = {k: v for k, v in preset.get(critic, {}).items()
                        if k in names and k not in SAC_ACTOR_FIELDS}
    return {**shared, **critic_group, **preset.get(algo, {})}


def _option(flag: str, name: str) -> str:
    return f"--{flag}.{name.replace('_', '-')}"


def check_widths_and_counts(config: Any, flag: str, widths: tuple[str, ...] = (),
                            positive: tuple[str, ...] = ()) -> None:
    """Network-width fields in `widths` hold >= 1 width, all positive; integer fields in
    `positive` are >= 1; errors name `--<flag>.<field>`."""
    for name in widths:
        value = getattr(config, name)
        if not value or min(value) < 1:
            raise ValueError(f"{name} ({_option(flag, name)}) needs >= 1 positive width, "
                             f"got {value}")
    for name in positive:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} ({_option(flag, name)}) must be >= 1, "
                             f"got {getattr(config, name)}")


def check_agent_fields(config: Any, flag: str, positive: tuple[str, ...] = (),
                       widths: tuple[str, ...] = ("hidden", "actor_hidden")) -> None:
    """The checks every actor-critic config shares, with errors naming `--<flag>.<field>`:
    network widths (`widths`: by default `hidden`, `actor_hidden`), the integer fields in
    `positive` ≥ 1, γ ∈ (0, 1), τ ∈ (0, 1], the value range."""
    from dualrl.critics.iql import value_range

    check_widths_and_counts(config, flag, widths, positive)
    if not 0.0 < config.gamma < 1.0:
        raise ValueError(f"gamma ({_option(flag, 'gamma')}) must be in (0, 1), "
                         f"got {config.gamma}")
    if not 0.0 < config.tau <= 1.0:
        raise ValueError(f"tau ({_option(flag, 'tau')}) must be in (0, 1], got {config.tau}")
    value_range(config.value_min, config.value_max, f"--{flag}")


# ------------------------------------------------------------------ string overrides
def field_types(cls: type) -> dict[str, Any]:
    """A config dataclass's fields and their types (class-level constants left out)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def parse_value(text: str, tp: Any, name: str = "") -> Any:
    """Parse a command-line string into the annotated type of a config field."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(text, inner[0], name)
    if tp is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true/false, got '{text}'")
    if origin is tuple:
        elem = args[0] if args else str
        return tuple(parse_value(x.strip(), elem, name) for x in text.split(",") if x.strip())
    if tp in (int, float, str):
        try:
            return tp(text)
        except ValueError:
            raise ValueError(f"{name}: expected {tp.__name__}, got '{text}'") from None
    if tp is Any:
        return text
    raise ValueError(f"{name}: cannot parse type {tp}")


def apply_overrides(obj: Any, overrides: dict[str, Any]) -> Any:
    """dataclasses.replace with a clear error listing valid fields for unknown names."""
    valid = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(
            f"{type(obj).__name__} has no field {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    return dataclasses.replace(obj, **overrides)


def config_from_dict(d: dict[str, Any], agent_config_cls: type) -> TrainConfig:
    """Rebuild a TrainConfig from config.json (lists become tuples where typed so)."""

    def build(cls: type, values: dict[str, Any]) -> Any:
        types_ = field_types(cls)
        fixed = {}
        for k, v in values.items():
            if k in types_ and typing.get_origin(types_[k]) is tuple and isinstance(v, list):
                v = tuple(v)
            fixed[k] = v
        return apply_overrides(cls(), fixed)

    return TrainConfig(
        task=d["task"],
        algo=d["algo"],
        seed=int(d["seed"]),
        preset=d.get("preset", "cpu"),
        dataset=d.get("dataset"),
        loop=build(LoopConfig, d.get("loop", {})),
        agent=build(agent_config_cls, d.get("agent", {})),
        env=dict(d.get("env", {})),
    )
