import json

import numpy as np
import pytest

from dualrl.experiments import stats
from dualrl.experiments.report import find_runs, main, mean_se, paired, table


def _fake_run(root, label, seed, scores, online_mean):
    d = root / label / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"algo": "dual", "label": label}))
    (d / "summary.json").write_text(json.dumps({
        "task": "frozenlake-shift", "algo": "dual", "label": label, "seed": seed,
        "offline_score": scores[0], "online_mean_score": online_mean, "final_score": scores[-1],
        "best_score": max(scores), "offline_steps": 10, "online_steps": 20}))
    records = [{"phase": "offline" if i == 0 else "online", "total_step": 10 * i, "score": s}
               for i, s in enumerate(scores)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_mean_and_standard_error():
    assert mean_se([1.0, 3.0]) == pytest.approx((2.0, 1.0))
    mean, se = mean_se([5.0])
    assert mean == 5.0 and se != se  # NaN for one seed


def test_paired_differences_use_only_shared_seeds():
    runs = [{"task": "t", "algo": "dual", "seed": s, "score": v} for s, v in [(0, 5.0), (1, 7.0),
                                                                              (2, 100.0)]]
    runs += [{"task": "t", "algo": "iql", "label": "iql", "seed": s, "score": v}
             for s, v in [(0, 4.0), (1, 4.0), (3, -50.0)]]
    runs.append({"task": "other", "algo": "iql", "seed": 2, "score": 0.0})
    mean, se, n = paired(runs, "t", "dual", "iql", "score")
    assert n == 2 and mean == pytest.approx(2.0) and se == pytest.approx(1.0)
    assert paired(runs, "t", "dual", "missing", "score") is None


def test_report_table_and_plot(tmp_path):
    _fake_run(tmp_path, "dual", 0, [10.0, 20.0, 30.0], 25.0)
    _fake_run(tmp_path, "dual", 1, [20.0, 30.0, 50.0], 35.0)
    _fake_run(tmp_path, "iql", 0, [10.0, 10.0, 10.0], 10.0)
    runs = find_runs([str(tmp_path)])
    text = table(runs)
    assert "| frozenlake-shift | dual | 2 | 15.0 ± 5.0 | 30.0 ± 5.0 | 40.0 ± 10.0 |" in text
    assert "| frozenlake-shift | iql | 1 | 10.0 | 10.0 | 10.0 |" in text
    out = tmp_path / "r.md"
    assert main([str(tmp_path), "--out", str(out), "--reps", "200"]) == 0
    png = tmp_path / "r_frozenlake-shift.png"
    assert png.stat().st_size > 1000 and "(r_frozenlake-shift.png)" in out.read_text()


def test_a_run_found_in_two_folders_counts_once(tmp_path, capsys):
    _fake_run(tmp_path / "sweep", "dual", 0, [10.0, 20.0], 20.0)
    _fake_run(tmp_path / "sweep", "dual", 1, [10.0, 30.0], 30.0)
    _fake_run(tmp_path / "records", "dual", 0, [10.0, 20.0], 20.0)  # the same run's record
    _fake_run(tmp_path / "records", "iql", 0, [10.0, 10.0], 10.0)
    runs = find_runs([str(tmp_path / "sweep"), str(tmp_path / "records")])
    assert sorted((r["label"], r["seed"]) for r in runs) == [("dual", 0), ("dual", 1),
                                                             ("iql", 0)]
    assert all("sweep" in r["run_dir"] for r in runs if r["label"] == "dual")
    assert "1 run(s) found in more than one" in capsys.readouterr().err


def test_two_different_runs_of_one_seed_are_named(tmp_path, capsys):
    _fake_run(tmp_path / "sweep", "dual", 0, [10.0, 20.0], 20.0)
    _fake_run(tmp_path / "rerun", "dual", 0, [10.0, 25.0], 25.0)  # did not reproduce
    runs = find_runs([str(tmp_path / "sweep"), str(tmp_path / "rerun")])
    assert sorted(r["final_score"] for r in runs) == [20.0, 25.0]
    err = capsys.readouterr().err
    assert "two different runs of dual seed 0 on frozenlake-shift" in err
    assert str(tmp_path / "sweep") in err and str(tmp_path / "rerun") in err


# --------------------------------------------------------- statistics vs rliable
FIXED = np.array([[12.0, 55.0, 80.0], [40.0, 61.0, 79.0], [33.0, 70.0, 91.0], [25.0, 48.0, 88.0],
                  [51.0, 66.0, 95.0], [18.0, 59.0, 84.0], [29.0, 73.0, 77.0]])  # (runs, tasks)
OTHER = FIXED[::-1] * 0.9 + 5.0


def test_iqm_and_its_stratified_bootstrap_ci_agree_with_rliable():
    from rliable import library as rly
    from rliable import metrics

    tasks = list(FIXED.T)  # one array of runs per task
    assert stats.iqm(tasks) == pytest.approx(metrics.aggregate_iqm(FIXED), abs=1e-12)
    point, lo, hi = stats.bootstrap_ci(tasks, reps=20_000)
    estimates, cis = rly.get_interval_estimates(
        {"m": FIXED}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=5_000)
    assert point == pytest.approx(estimates["m"][0], abs=1e-12)
    # percentile CIs of two independent bootstraps: equal up to sampling noise
    assert (lo, hi) == pytest.approx((cis["m"][0, 0], cis["m"][1, 0]), abs=0.5)
    assert lo < point < hi
    mean_point, _, _ = stats.bootstrap_ci(tasks, stats.mean_rows, reps=10)
    assert mean_point == pytest.approx(FIXED.mean())


def test_probability_of_improvement_agrees_with_rliable():
    from rliable import library as rly
    from rliable import metrics

    x, y = list(FIXED.T), list(OTHER.T)
    assert stats.probability_of_improvement(x, y) == pytest.approx(
        metrics.probability_of_improvement(FIXED, OTHER), abs=1e-12)
    assert stats.probability_of_improvement(x, x) == pytest.approx(0.5)  # ties count half
    point, lo, hi = stats.probability_of_improvement_ci(x, y, reps=20_000)
    estimates, cis = rly.get_interval_estimates(
        {"xy": (FIXED, OTHER)},
        lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps=1_000)
    assert point == pytest.approx(estimates["xy"][0], abs=1e-12)
    # (rliable's loop is slow: 1000 samples; P moves in steps of 1/147 here)
    assert (lo, hi) == pytest.approx((cis["xy"][0, 0], cis["xy"][1, 0]), abs=0.03)


def test_stratified_bootstrap_resamples_within_tasks():
    # two tasks with constant scores: every resample keeps one run of each, so the IQM of
    # any sample is fixed, and the CI collapses onto it
    point, lo, hi = stats.bootstrap_ci([np.full(4, 10.0), np.full(4, 90.0)], reps=500)
    assert point == lo == hi == pytest.approx(50.0)


# ------------------------------------------------------------- the report page
def _sweep_like(root, task, label, seed, online_mean, config_agent):
    d = root / task / label / f"seed{seed}"
    d.mkdir(parents=True)
    config = {"task": task, "algo": "dual", "seed": seed, "label": label,
              "loop": {"offline_steps": 10}, "agent": config_agent, "env": {}}
    (d / "config.json").write_text(json.dumps(config))
    (d / "summary.json").write_text(json.dumps({
        "task": task, "algo": "dual", "label": label, "seed": seed, "offline_score": 10.0,
        "online_mean_score": online_mean, "final_score": online_mean + 5,
        "best_score": online_mean + 5, "offline_steps": 10, "online_steps": 20}))
    records = [{"phase": "offline", "step": 10, "total_step": 10, "score": 10.0},
               {"phase": "online", "step": 10, "total_step": 20, "score": online_mean,
                "epistemic_std": 0.1, "aleatoric_std": 0.2, "shift_distance": 0.0,
                "action_std": 0.3}]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_report_page_has_ablation_and_shift_weight_tables_and_regenerates_identically(
        tmp_path):
    runs = tmp_path / "runs"
    base = {"shift_weight": 0.5, "epistemic": True, "stage_cache": "/x"}
    for task in ("frozenlake-shift", "frozenlake-narrow"):
        for seed in range(3):
            _sweep_like(runs, task, "dual", seed, 50.0 + seed, base)
            _sweep_like(runs, task, "dual-no-epistemic", seed, 40.0 + 2 * seed,
                        {**base, "epistemic": False})
            _sweep_like(runs, task, "dual-shift-0.1", seed, 60.0 + seed,
                        {**base, "shift_weight": 0.1, "stage_cache": "/y"})
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    page.write_text("# Hand-written title\n\nFindings written by hand.\n\n<!-- table -->\nold\n")
    assert main([str(runs), "--out", str(page), "--reps", "300"]) == 0
    text = page.read_text()
    assert text.startswith("# Hand-written title\n\nFindings written by hand.\n\n<!-- table -->")
    assert "\nold\n" not in text
    for heading in ("## Interquartile mean", "## Paired differences", "## Probability of "
                    "improvement", "## Ablations (Tab. 4 shape)", "## λ_shift (Tab. 5 shape)",
                    "## Acting diagnostics", "## Learning curves"):
        assert heading in text, heading
    # paired: dual-no-epistemic − dual per seed = -10, -9, -8
    assert "| frozenlake-shift | dual-no-epistemic − dual | 3 | +0.0 ± 0.0 | -9.0 ± 0.6 |" in text
    assert "| dual-no-epistemic | epistemic = False | 42.0 ± 1.2 (-9.0 ± 0.6) |" in text
    assert "| frozenlake-shift | 51.0 ± 0.6 | 61.0 ± 0.6 |" not in text  # λ columns sorted
    assert "| frozenlake-shift | 61.0 ± 0.6 | 51.0 ± 0.6 |" in text  # λ 0.1, then 0.5
    assert "P(dual-shift-0.1 > dual) | 0.50 [0.50, 0.50] | 1.00 [1.00, 1.00]" in text
    assert "| all 2 tasks | dual | 6 |" in text
    pngs = sorted(page.parent.glob("*.png"))
    assert [p.name for p in pngs] == ["page_frozenlake-narrow.png", "page_frozenlake-shift.png"]
    before = {p: p.read_bytes() for p in [page, *pngs]}
    assert main([str(runs), "--out", str(page), "--reps", "300"]) == 0
    assert {p: p.read_bytes() for p in [page, *pngs]} == before  # byte-identical


def test_report_with_no_runs_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no run directories" in capsys.readouterr().err


def test_report_pairs_last_evaluation_and_saved_records_remake_the_page(tmp_path, capsys):
    runs = tmp_path / "runs"
    base = {"shift_weight": 0.5, "epistemic": True}
    for seed in range(3):
        _sweep_like(runs, "frozenlake-shift", "iql", seed, 30.0 + seed, base)
        _sweep_like(runs, "frozenlake-shift", "dual", seed, 50.0 + seed, base)
        _sweep_like(runs, "frozenlake-shift", "dual-rerun", seed, 47.0 + 2 * seed, base)
        metrics = runs / "frozenlake-shift" / "dual" / f"seed{seed}" / "metrics.jsonl"
        last = {"phase": "online", "step": 20, "total_step": 30, "score": 60.0,
                "dp_success_policy": 90.0 + seed, "v_init": 0.5}
        metrics.write_text(metrics.read_text() + json.dumps(last) + "\n")
    page, again = tmp_path / "a.md", tmp_path / "b.md"
    records = tmp_path / "records"
    assert main([str(runs), "--out", str(page), "--reps", "200", "--baseline", "iql",
                 "--pairs", "dual-rerun:dual", "--save-records", str(records)]) == 0
    text = page.read_text()
    assert "| frozenlake-shift | dual − iql | 3 | +0.0 ± 0.0 | +20.0 ± 0.0 |" in text
    assert "| frozenlake-shift | dual-rerun − dual | 3 | +0.0 ± 0.0 | -2.0 ± 0.6 |" in text
    assert "## At the last evaluation" in text
    assert "| frozenlake-shift | dual | 91.0 ± 0.6 | 0.50 ± 0.00 |" in text
    # online gain: online mean (50 + seed) − offline (10) per run
    assert "| frozenlake-shift | dual | 3 | +41.0 ± 0.6 | +46.0 ± 0.6 | +46.0 ± 0.6 |" in text
    assert "## Shift cost" not in text  # no run reports its data environment's score
    # the saved records alone (no checkpoints) remake the same page, byte for byte
    saved = sorted(p.relative_to(records).as_posix() for p in records.rglob("*") if p.is_file())
    assert len(saved) == 27 and "frozenlake-shift/dual/seed2/metrics.jsonl" in saved
    assert main([str(records), "--out", str(again), "--reps", "200", "--baseline", "iql",
                 "--pairs", "dual-rerun:dual"]) == 0
    assert again.read_text() == text.replace("a_frozenlake", "b_frozenlake")
    assert again.with_name("b_frozenlake-shift.png").read_bytes() == \
        page.with_name("a_frozenlake-shift.png").read_bytes()
    # bad input: one line, nothing written
    (records / "notes.txt").write_text("mine")
    assert main([str(runs), "--save-records", str(records)]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert (records / "notes.txt").read_text() == "mine"
    # a run and its saved copy are one run: saved once
    assert main([str(runs), str(records), "--save-records", str(tmp_path / "once")]) == 0
    assert "run(s) found in more than one" in capsys.readouterr().err
    assert sorted(p.relative_to(tmp_path / "once").as_posix()
                  for p in (tmp_path / "once").rglob("*") if p.is_file()) == saved
    # two different runs with the same (task, label, seed): refused, nothing written
    other = tmp_path / "other" / "frozenlake-shift" / "dual" / "seed0"
    other.mkdir(parents=True)
    for name in ("config.json", "metrics.jsonl"):
        (other / name).write_text((records / "frozenlake-shift/dual/seed0" / name).read_text())
    summary = json.loads((records / "frozenlake-shift/dual/seed0/summary.json").read_text())
    (other / "summary.json").write_text(json.dumps({**summary, "final_score": -1.0}))
    assert main([str(runs), str(tmp_path / "other"), "--save-records",
                 str(tmp_path / "both")]) == 2
    assert "two runs would be saved as" in capsys.readouterr().err
    assert not (tmp_path / "both").exists()
    assert main([str(runs), "--pairs", "dual"]) == 2
    assert "METHOD:REFERENCE" in capsys.readouterr().err
