"""`dualrl bench efficiency`: latency rows of the named methods, returns read from sweep
folders (mean ± s.e. over seeds), the page and figure remade from the JSON."""

from __future__ import annotations

import json

import pytest

from dualrl.bench.efficiency import run_returns
from dualrl.cli import main
from dualrl.experiments.report import find_runs


def _runs(root, label: str, scores: list[tuple[float, float]]) -> None:
    for seed, (mean, final) in enumerate(scores):
        d = root / "frozenlake-shift" / label / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({
            "task": "frozenlake-shift", "algo": "dual", "seed": seed, "preset": "cpu",
            "online_mean_score": mean, "final_score": final}))


@pytest.mark.slow
def test_efficiency_rows_returns_page_and_figure(tmp_path, capsys):
    runs = tmp_path / "runs"
    _runs(runs, "dual-k2", [(40.0, 50.0), (60.0, 70.0)])
    out = tmp_path / "out"
    rc = main(["bench", "efficiency", "--task", "frozenlake-shift", "--preset", "quick",
               "--methods", "iql,dual-k2", "--runs", str(runs), "--budget", "0.01",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    saved = json.loads((out / "efficiency_frozenlake-shift.json").read_text())
    rows = {r["method"]: r for r in saved["rows"]}
    assert set(rows) == {"iql", "dual-k2"} and rows["dual-k2"]["steps"] == 2
    assert all(r["ms_median"] > 0 for r in rows.values())
    assert rows["dual-k2"]["return"]["online_mean"] == pytest.approx(50.0)
    assert rows["dual-k2"]["return"]["online_se"] == pytest.approx(10.0)
    assert rows["iql"]["return"] == {}
    page = (out / "efficiency_frozenlake-shift.md").read_text()
    assert "50.0 ± 10.0" in page and "60.0 ± 10.0" in page
    assert (out / "efficiency_frozenlake-shift.png").stat().st_size > 0
    (out / "efficiency_frozenlake-shift.md").unlink()
    assert main(["bench", "efficiency", "--task", "frozenlake-shift", "--methods",
                 "iql,dual-k2", "--render", "--out", str(out)]) == 0
    assert (out / "efficiency_frozenlake-shift.md").read_text() == page


def test_efficiency_refuses_unknown_methods_and_missing_folders(tmp_path, capsys):
    assert main(["bench", "efficiency", "--methods", "iql,nope", "--out", str(tmp_path)]) == 2
    assert "unknown method(s) nope" in capsys.readouterr().err
    assert main(["bench", "efficiency", "--runs", str(tmp_path / "missing"),
                 "--out", str(tmp_path)]) == 2
    assert "missing: no such run folder" in capsys.readouterr().err


def test_a_run_in_two_folders_counts_once(tmp_path):
    _runs(tmp_path / "a", "dual", [(40.0, 50.0), (60.0, 70.0)])
    _runs(tmp_path / "b", "dual", [(40.0, 50.0), (60.0, 70.0), (80.0, 90.0)])  # copies + 1
    ret = run_returns(find_runs([tmp_path / "a", tmp_path / "b"]), "frozenlake-shift", "dual")
    assert ret["seeds"] == 3 and ret["online_mean"] == pytest.approx(60.0)
    assert ret["final"] == pytest.approx(70.0)
