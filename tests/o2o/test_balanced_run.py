"""Runs with OFF2ON's balanced replay (`--balanced-replay`): exact resume (the priorities and
the ratio estimator are in the checkpoint) and vmapped seeds that each carry their own."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_loop import tiny_config

from dualrl.o2o.loop import train
from dualrl.o2o.vmapped import train_seeds


@pytest.fixture
def balanced_config():
    config = tiny_config(offline_steps=100, online_steps=200, checkpoint_every=100)
    return dataclasses.replace(config, loop=dataclasses.replace(
        config.loop, balanced_replay=True, online_ratio=0.25, rest_from_all=True, utd=2))


def test_a_balanced_run_resumes_exactly_and_reports_the_estimator(balanced_config,
                                                                  resume_matches):
    _, records = resume_matches(balanced_config, 150)
    online = [r for r in records if r["phase"] == "online"]
    assert online and all(np.isfinite(r["ratio_loss"]) for r in online)
    assert all(0.0 < r["replay_online_mass"] < 1.0 for r in online)
    assert all(0.25 < r["online_share"] < 1.0 for r in online)


def test_vmapped_seeds_carry_their_own_priorities(tmp_path, balanced_config, metric_records):
    train(dataclasses.replace(balanced_config, seed=5), tmp_path / "alone")
    train_seeds(balanced_config, [4, 5], [tmp_path / "s4", tmp_path / "s5"])
    alone, together = (metric_records(tmp_path / d / "metrics.jsonl") for d in ("alone", "s5"))
    assert [r["score"] for r in alone] == [r["score"] for r in together]
    for a, b in zip(alone, together, strict=True):
        if a["phase"] == "online":
            assert b["replay_online_mass"] == pytest.approx(a["replay_online_mass"], rel=2e-2)
