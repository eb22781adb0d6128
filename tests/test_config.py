"""Typed config: string parsing for the CLI, overrides, presets and the config.json round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dualrl.algos.iql import IQLConfig
from dualrl.config import (
    PRESET_NAMES,
    PRESETS,
    LoopConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    field_types,
    parse_value,
    preset_agent_overrides,
    preset_overrides,
)


# ------------------------------------------------------------------------ parse_value
@pytest.mark.parametrize(
    "text, tp, expected",
    [
        ("5", int, 5),
        ("-3", int, -3),
        ("0.25", float, 0.25),
        ("1e-3", float, 1e-3),
        ("3", float, 3.0),
        ("hello", str, "hello"),
        ("16,16", tuple[int, ...], (16, 16)),
        ("256, 128 ,64", tuple[int, ...], (256, 128, 64)),
        ("8", tuple[int, ...], (8,)),
        ("0.5", float | None, 0.5),
        ("none", float | None, None),
        ("None", float | None, None),
        ("NULL", float | None, None),
        ("rows:3-7", str | None, "rows:3-7"),
        ("none", str | None, None),
    ],
)
def test_parse_value(text, tp, expected):
    value = parse_value(text, tp, "--x")
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", ["1", "true", "True", "YES", "on"])
def test_parse_bool_true(text):
    assert parse_value(text, bool) is True


@pytest.mark.parametrize("text", ["0", "false", "FALSE", "no", "off"])
def test_parse_bool_false(text):
    assert parse_value(text, bool) is False


@pytest.mark.parametrize(
    "text, tp, match",
    [
        ("abc", int, "--opt: expected int, got 'abc'"),
        ("1.5", int, "expected int"),
        ("x", float, "expected float, got 'x'"),
        ("maybe", bool, "--opt: expected true/false, got 'maybe'"),
        ("16,a", tuple[int, ...], "expected int, got 'a'"),
        ("fast", float | None, "expected float, got 'fast'"),
        ("1", list[int], "cannot parse type"),
    ],
)
def test_parse_value_errors(text, tp, match):
    with pytest.raises(ValueError, match=match):
        parse_value(text, tp, "--opt")


def test_every_config_field_type_is_parseable():
    """The CLI turns every field into a flag, so each annotated type must parse."""
    samples = {int: "1", float: "0.5", bool: "true", str: "x"}
    for cls in (LoopConfig, IQLConfig):
        for name, tp in field_types(cls).items():
            text = samples.get(tp, "1")
            parse_value(text, tp, name)  # no "cannot parse type"


# -------------------------------------------------------------------- apply_overrides
def test_apply_overrides_replaces_fields():
    loop = apply_overrides(LoopConfig(), {"offline_steps": 5, "online_ratio": 0.25})
    assert loop.offline_steps == 5 and loop.online_ratio == 0.25
    assert loop.batch_size == LoopConfig().batch_size


def test_apply_overrides_unknown_field_lists_valid_fields():
    with pytest.raises(ValueError) as info:
        apply_overrides(LoopConfig(), {"ofline_steps": 5, "offline_steps": 1})
    msg = str(info.value)
    assert "LoopConfig has no field ofline_steps" in msg
    for name in ("offline_steps", "online_steps", "eval_every", "online_ratio"):
        assert name in msg
    with pytest.raises(ValueError, match=r"IQLConfig has no field nope; valid: .*expectile"):
        apply_overrides(IQLConfig(), {"nope": 1})


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"eval_every": 0}, "eval_every"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"keep_checkpoints": 0}, "keep_checkpoints"),
        ({"scan_chunk": 0}, "scan_chunk"),
        ({"batch_size": 0}, "batch_size"),
        ({"eval_episodes": 0}, "eval_episodes"),
        ({"utd": 0}, "utd"),
        ({"offline_steps": -1}, "offline_steps"),
        ({"online_steps": -1}, "online_steps"),
        ({"online_ratio": 1.5}, "online_ratio"),
        ({"online_ratio": -0.1}, "online_ratio"),
        ({"online_ratio": float("nan")}, "online_ratio"),
    ],
)
def test_loop_config_rejects_values_the_loop_cannot_run(overrides, match):
    """0 would divide by zero (eval/checkpoint every), hang (scan_chunk) or crash later."""
    with pytest.raises(ValueError, match=match):
        apply_overrides(LoopConfig(), overrides)


def test_loop_config_accepts_edge_values():
    loop = LoopConfig(offline_steps=0, online_steps=0, online_ratio=1.0, eval_every=1)
    assert loop.online_ratio == 1.0
    assert LoopConfig(online_ratio=0.0).online_ratio == 0.0


# -------------------------------------------------------------------------- presets
@pytest.mark.parametrize("preset", ["quick", "cpu", "paper"])
def test_frozenlake_presets_exist_and_apply(preset):
    assert preset in PRESET_NAMES and preset in PRESETS["frozenlake"]
    from dualrl.algos import algo_names, get_algo

    groups = preset_overrides("frozenlake", preset)
    # "loop", "agent" (every algorithm), "env", and optional per-algorithm groups
    assert {"loop", "agent", "env"} <= set(groups)
    assert set(groups) - {"loop", "agent", "env"} <= set(algo_names())
    loop = apply_overrides(LoopConfig(), groups["loop"])
    agent = apply_overrides(IQLConfig(), groups["agent"])
    for algo in set(groups) - {"loop", "agent", "env"}:
        config_cls, _ = get_algo(algo)
        apply_overrides(config_cls(), preset_agent_overrides(groups, algo, config_cls))
    assert loop.offline_steps > 0 and loop.online_steps > 0
    assert 0.5 < agent.expectile < 1.0
    from dualrl.envs import get_task

    get_task("frozenlake-shift").resolve(**groups["env"])  # only known task parameters


def test_preset_budgets_grow():
    steps = [preset_overrides("frozenlake", p)["loop"]["offline_steps"] for p in PRESET_NAMES]
    assert steps == sorted(steps) and steps[-1] == 1_000_000


def test_unknown_preset_and_family():
    with pytest.raises(ValueError, match="valid presets: quick, cpu, paper"):
        preset_overrides("frozenlake", "huge")
    assert preset_overrides("no-such-family", "quick") == {"loop": {}, "agent": {}, "env": {}}


# ------------------------------------------------------------------------ round trip
def test_config_round_trip_through_json():
    original = TrainConfig(
        task="frozenlake-noshift",
        algo="iql",
        seed=7,
        preset="quick",
        dataset="data/fl.hdf5",
        loop=LoopConfig(offline_steps=123, online_steps=45, online_ratio=0.5, progress=False),
        agent=IQLConfig(hidden=(16, 8, 4), expectile=0.8, beta=2.5),
        env={"map": "4x4", "slip_online": 0.5},
    )
    raw = json.loads(json.dumps(original.to_dict()))  # what config.json holds
    assert raw["agent"]["hidden"] == [16, 8, 4]
    back = config_from_dict(raw, IQLConfig)
    assert back == original
    assert back.agent.hidden == (16, 8, 4) and isinstance(back.agent.hidden, tuple)
    assert isinstance(back.loop, LoopConfig) and isinstance(back.agent, IQLConfig)


def test_config_round_trip_defaults():
    original = TrainConfig(agent=IQLConfig())
    back = config_from_dict(original.to_dict(), IQLConfig)
    assert back == original
    assert dataclasses.asdict(back.loop) == dataclasses.asdict(LoopConfig())
    assert back.loop.online_ratio is None and back.dataset is None
