import json

import pytest

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
    out, png = tmp_path / "r.md", tmp_path / "curves.png"
    assert main([str(tmp_path), "--out", str(out), "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000 and "learning curves" in out.read_text()
