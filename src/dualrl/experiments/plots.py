"""Learning curves from run directories: score against total environment/gradient step,
mean ± standard error over seeds, one line per method."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from dualrl.experiments.report import folder_label


def _records(d: Path) -> list[dict]:
    return [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines() if x]


def optimum_score(run_dirs: list[Path]) -> float | None:
    """The task's exact optimum in the online dynamics, where the runs log it (Frozen-Lake's
    `dp_success_optimal`)."""
    values = [r["dp_success_optimal"] for d in run_dirs for r in _records(d)
              if r.get("dp_success_optimal") is not None]
    return float(np.mean(values)) if values else None


def load_curves(run_dirs: list[Path]) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for d in run_dirs:
        records = _records(d)
        config = json.loads((d / "config.json").read_text())
        label = folder_label(d, config) or config["algo"]
        steps = np.array([r["total_step"] for r in records])
        scores = np.array([r["score"] for r in records], float)
        curves[label].append((steps, scores))
    return curves


def bootstrap_band(scores: np.ndarray, reps: int = 2_000, confidence: float = 0.95,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A percentile CI of the mean over seeds at every step: scores (seeds, steps)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, scores.shape[0], (reps, scores.shape[0]))
    means = scores[idx].mean(1)  # (reps, steps)
    alpha = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(means, [alpha, 100 - alpha], axis=0)
    return lo, hi


def plot_learning_curves(run_dirs: list[str | Path], out: str | Path, title: str = "",
                         offline_steps: int | None = None, band: str = "se") -> Path:
    """Mean score over seeds per method; the band is ± one standard error (`se`) or a 95 %
    bootstrap CI of the mean (`bootstrap`). The PNG carries no timestamp or version, so the
    same runs give the same bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dirs = [Path(d) for d in run_dirs]
    curves = load_curves(run_dirs)
    many = len(curves) > 4  # the legend goes beside the axes, not over the curves
    fig, ax = plt.subplots(figsize=(9.6, 4.8) if many else (6.4, 4.0))
    if len(curves) > 10:  # tab10 would repeat colours
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    optimum = optimum_score(run_dirs)
    if optimum is not None:
        ax.axhline(optimum, color="black", ls=":", lw=1,
                   label=f"optimum in the online dynamics (DP): {optimum:.1f}")
    for label, runs in sorted(curves.items()):
        n = min(len(s) for s, _ in runs)
        steps = runs[0][0][:n]
        scores = np.stack([sc[:n] for _, sc in runs])
        mean = scores.mean(0)
        ax.plot(steps, mean, label=f"{label} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        if len(runs) > 1:
            if band == "bootstrap":
                lo, hi = bootstrap_band(scores)
            else:
                se = scores.std(0, ddof=1) / np.sqrt(len(runs))
                lo, hi = mean - se, mean + se
            ax.fill_between(steps, lo, hi, alpha=0.2)
    if offline_steps:
        ax.axvline(offline_steps, color="grey", ls="--", lw=1)
        ax.text(offline_steps, ax.get_ylim()[1], " online →", va="top", fontsize=8)
    ax.set_xlabel("step (offline gradient steps, then online environment steps)")
    ax.set_ylabel("score (online environment)")
    ax.set_title(title)
    if many:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, metadata={"Software": None})
    plt.close(fig)
    return out
