"""`--vmap-seeds`: N seeds as one vmapped program give each seed the run it would have had
alone (same evaluations; losses equal up to float summation order), in its own resumable
run directory."""

from __future__ import annotations

import dataclasses
import json

import pytest
from test_loop import _strip, tiny_config

from dualrl.o2o.loop import resume, train
from dualrl.o2o.vmapped import train_seeds


def _records(path):
    return _strip([json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()])


def _assert_same_run(a: list[dict], b: list[dict]) -> None:
    assert [(r["phase"], r["step"]) for r in a] == [(r["phase"], r["step"]) for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert set(ra) == set(rb)
        assert ra["score"] == rb["score"]  # the same moves in every evaluation episode
        for key, value in ra.items():
            if isinstance(value, float) and rb[key] is not None:
                # training metrics: vmapped kernels sum in another order (~1e-3 relative
                # after a few hundred updates on this budget)
                assert rb[key] == pytest.approx(value, rel=2e-2, abs=1e-3), key
            else:
                assert rb[key] == value, key


def test_vmapped_seeds_equal_separate_runs_and_resume_alone(tmp_path):
    config = tiny_config(offline_steps=200, online_steps=200, checkpoint_every=100)
    seeds = [3, 4]
    separate = [tmp_path / f"alone{s}" for s in seeds]
    for seed, out in zip(seeds, separate, strict=True):
        train(dataclasses.replace(config, seed=seed), out)
    together = [tmp_path / "vmapped" / f"seed{s}" for s in seeds]
    summaries = train_seeds(config, seeds, together)
    assert [s["seed"] for s in summaries] == seeds
    for a, b in zip(separate, together, strict=True):
        _assert_same_run(_records(a), _records(b))
        config_a = json.loads((a / "config.json").read_text())
        config_b = json.loads((b / "config.json").read_text())
        assert {k: v for k, v in config_a.items() if k != "run"} == \
            {k: v for k, v in config_b.items() if k != "run"}
    # a seed's online checkpoint is the separate run's: resuming it alone ends the same way
    seed_dir = together[1]
    ckpts = sorted(p.name for p in (seed_dir / "checkpoints").iterdir() if p.is_dir())
    assert any(name.startswith("online-") for name in ckpts), ckpts
    final = _records(seed_dir)
    (seed_dir / "summary.json").unlink()
    (seed_dir / "checkpoints" / "LATEST").write_text(
        max((c for c in ckpts if c.startswith("online-")),
            key=lambda c: int(c.split("-")[1])) + "\n")
    resume(seed_dir)
    _assert_same_run(final, _records(seed_dir))


def test_vmap_seeds_cli_writes_one_directory_per_seed(tmp_path, capsys):
    from dualrl.cli import main

    out = tmp_path / "runs"
    argv = ["train", "--task", "frozenlake-shift", "--preset", "quick", "--seed", "7",
            "--vmap-seeds", "2", "--offline-steps", "100", "--online-steps", "100",
            "--eval-every", "100", "--eval-episodes", "2", "--batch-size", "32",
            "--iql.hidden", "16,16", "--env.map", "4x4", "--env.data-episodes", "50",
            "--scan-chunk", "100", "--progress", "false", "--out", str(out)]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed7", "seed8"]
    assert json.loads((out / "seed8" / "summary.json").read_text())["seed"] == 8
    assert main([*argv[:-2], "--out", str(out / "seed7"), "--resume"]) == 2
    assert "DIR/seed<k> --resume" in capsys.readouterr().err


def test_vmapped_dual_seeds_pretrain_their_own_stages(tmp_path):
    """DUAL's planner / student stages run per seed, unbatched, each into its own run
    directory (not the first seed's), and the whole run, the Laplace sub-policies' online
    moves included, equals the separate runs' (to float tolerance: the posterior draws are a
    continuous function of the fitted precision, tests/uq/test_laplace.py)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "algos"))
    from test_dual import tiny_config as dual_config

    config = dual_config(online_steps=100, planner_steps=100, distill_steps_per_round=10)
    config = dataclasses.replace(config, loop=dataclasses.replace(config.loop,
                                                                  offline_steps=100))
    seeds = [1, 2]
    for seed in seeds:
        train(dataclasses.replace(config, seed=seed), tmp_path / f"alone{seed}")
    train_seeds(config, seeds, [tmp_path / f"together{s}" for s in seeds])
    for seed in seeds:
        assert (tmp_path / f"together{seed}" / "stages" / "planner" / "LATEST").exists()
        alone, together = _records(tmp_path / f"alone{seed}"), _records(
            tmp_path / f"together{seed}")
        _assert_same_run(alone, together)
        assert any(r["phase"] == "online" and r["epistemic_std"] > 0 for r in together)
