"""The sweep driver: which runs a shard takes, labels, skipping finished runs."""

import json

import pytest

from dualrl.experiments import sweep


@pytest.fixture
def fake_train(monkeypatch):
    made = []

    def train(config, out):
        made.append((config.algo, config.seed, out.parent.name))
        out.mkdir(parents=True)
        (out / "config.json").write_text(json.dumps({"algo": config.algo}))
        (out / "summary.json").write_text(json.dumps({"algo": config.algo}))

    monkeypatch.setattr("dualrl.o2o.loop.train", train)
    return made


def test_shards_split_the_seed_major_plan_and_finished_runs_are_skipped(tmp_path, fake_train):
    args = ["--out", str(tmp_path), "--tasks", "frozenlake-shift", "--methods", "a=--algo iql",
            "b=--algo dual", "--seeds", "0", "1", "--preset", "quick"]
    assert sweep.main([*args, "--shard", "1/2"]) == 0
    assert fake_train == [("dual", 0, "b"), ("dual", 1, "b")]
    assert sweep.main([*args, "--shard", "0/2"]) == 0
    assert fake_train[2:] == [("iql", 0, "a"), ("iql", 1, "a")]
    summary = json.loads((tmp_path / "frozenlake-shift/b/seed1/summary.json").read_text())
    assert summary["label"] == "b"
    assert sweep.main(args) == 0 and len(fake_train) == 4  # every run is finished
    with pytest.raises(SystemExit):
        sweep.main([*args, "--shard", "2/2"])
