"""The optional loggers: TensorBoard (tensorboardX event files) and Weights & Biases (through a
stand-in module: the adapter's calls, no network), fed the same records as metrics.jsonl."""

from __future__ import annotations

import json
import struct
import sys
import types
from pathlib import Path

import pytest

from dualrl.algos.iql import IQLConfig
from dualrl.config import LoopConfig, TrainConfig
from dualrl.o2o.loggers import LoggerError, scalars
from dualrl.o2o.loop import train


def tiny_config(loggers: tuple[str, ...]) -> TrainConfig:
    loop = LoopConfig(offline_steps=200, online_steps=200, eval_every=100, eval_episodes=2,
                      checkpoint_every=100, scan_chunk=100, batch_size=32, progress=False,
                      loggers=loggers)
    return TrainConfig(task="frozenlake-shift", algo="iql", seed=3, preset="quick", loop=loop,
                       agent=IQLConfig(hidden=(16, 16)), env=dict(map="4x4", data_episodes=50))


def read_events(folder: Path) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in the TFRecord event files under `folder`."""
    from tensorboardX.proto import event_pb2

    found = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + length])
            i += 12 + length + 4  # length, its CRC, the record, its CRC
            for value in event.summary.value:
                found.append((value.tag, event.step, value.simple_value))
    return found


def records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_logger_writes_every_record(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(("tensorboard",)), out)
    events = read_events(out / "tensorboard")
    scores = {(tag, step): value for tag, step, value in events if tag.endswith("/score")}
    expected = {(f"{r['phase']}/score", r["total_step"]): r["score"] for r in records(out)}
    assert scores == pytest.approx(expected)
    assert any(tag == "online/critic_loss" for tag, _, _ in events)


def test_wandb_logger_calls_offline_init_log_and_finish(tmp_path, monkeypatch):
    calls: dict[str, list] = {"init": [], "log": [], "finish": []}

    class FakeRun:
        def log(self, data, step):
            calls["log"].append((step, data))

        def finish(self):
            calls["finish"].append(True)

    def init(**kwargs):
        calls["init"].append(kwargs)
        return FakeRun()

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    out = tmp_path / "run"
    train(tiny_config(("wandb",)), out)
    (init_kwargs,) = calls["init"]
    config = json.loads((out / "config.json").read_text())
    assert init_kwargs["mode"] == "offline" and init_kwargs["id"] == config["run"]["id"]
    assert init_kwargs["dir"] == str(out) and init_kwargs["config"]["algo"] == "iql"
    assert [step for step, _ in calls["log"]] == [r["total_step"] for r in records(out)]
    assert calls["log"][-1][1] == scalars(records(out)[-1])
    assert calls["finish"] == [True]


def test_unknown_or_missing_loggers_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown mlflow; valid: tensorboard, wandb"):
        LoopConfig(loggers=("mlflow",))
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    with pytest.raises(LoggerError, match=r"pip install 'dualrl\[tensorboard\]'"):
        train(tiny_config(("tensorboard",)), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_scalars_keep_finite_numbers_under_the_phase():
    record = {"phase": "online", "step": 5, "total_step": 10, "score": 50.0, "nan": float("nan"),
              "flag": True, "name": "x", "count": 3}
    assert scalars(record) == {"online/score": 50.0, "online/count": 3.0}
