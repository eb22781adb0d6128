"""Aggregate statistics of RL scores as Agarwal et al. (2021) recommend and `rliable` computes
them: the interquartile mean (IQM), percentile confidence intervals from a stratified
bootstrap (runs resampled within each task), and the probability of improvement.

Scores come as one array per task (runs may differ in number between tasks). Written here in
numpy rather than depending on rliable: it pulls pandas, seaborn, scipy and `arch`, whose
pins (arch < 8) do not import with pandas 3; the tests check these functions against
rliable's own on fixed numbers. Every bootstrap takes a seed, so a report regenerates
byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Scores = Sequence[np.ndarray]  # one 1-D array of run scores per task


def _flat(scores: Scores) -> np.ndarray:
    return np.concatenate([np.asarray(s, float).ravel() for s in scores])


def iqm_rows(m: np.ndarray) -> np.ndarray:
    """The IQM of each row: the mean of its middle 50 % (the 25 % trimmed mean, cutting
    int(0.25 n) scores from each end, as scipy.stats.trim_mean and rliable)."""
    m = np.sort(m, axis=-1)
    cut = int(0.25 * m.shape[-1])
    return m[..., cut: m.shape[-1] - cut].mean(-1)


def mean_rows(m: np.ndarray) -> np.ndarray:
    return m.mean(-1)


def iqm(scores: Scores) -> float:
    """Interquartile mean of all runs of all tasks."""
    return float(iqm_rows(_flat(scores)))


def _resample(scores: Scores, reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`reps` stratified bootstrap samples: each task's runs drawn with replacement,
    (reps, runs of the task) per task."""
    out = []
    for s in scores:
        s = np.asarray(s, float).ravel()
        out.append(s[rng.integers(0, s.size, (reps, s.size))])
    return out


def _percentiles(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    lo, hi = np.percentile(draws, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def bootstrap_ci(scores: Scores, statistic: Callable[[np.ndarray], np.ndarray] = iqm_rows,
                 reps: int = 10_000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """(point estimate, lower, upper): a percentile CI of `statistic` (of the runs of all
    tasks together, row-wise: `iqm_rows`, `mean_rows`) over a stratified bootstrap."""
    rng = np.random.default_rng(seed)
    draws = statistic(np.concatenate(_resample(scores, reps, rng), axis=1))
    return (float(statistic(_flat(scores))), *_percentiles(draws, confidence))


def _poi_rows(x: list[np.ndarray], y: list[np.ndarray]) -> np.ndarray:
    per_task = [((a[..., :, None] > b[..., None, :])
                 + 0.5 * (a[..., :, None] == b[..., None, :])).mean((-2, -1))
                for a, b in zip(x, y, strict=True)]
    return np.mean(per_task, axis=0)


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """P(X > Y): per task, the chance that a run of X scores above a run of Y (ties count
    one half: the Mann-Whitney U statistic / (n m)), averaged over tasks."""
    return float(_poi_rows([np.asarray(a, float) for a in x], [np.asarray(b, float) for b in y]))


def probability_of_improvement_ci(x: Scores, y: Scores, reps: int = 10_000,
                                  confidence: float = 0.95,
                                  seed: int = 0) -> tuple[float, float, float]:
    """P(X > Y) with a percentile CI; X's and Y's runs are resampled independently within
    each task (rliable's stratified independent bootstrap)."""
    if len(x) != len(y):
        raise ValueError("probability of improvement: X and Y need the same tasks")
    rng = np.random.default_rng(seed)
    draws = _poi_rows(_resample(x, reps, rng), _resample(y, reps, rng))
    return (probability_of_improvement(x, y), *_percentiles(draws, confidence))
