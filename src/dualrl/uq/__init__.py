"""Uncertainty from a linear head on fixed features (knows nothing of DUAL or RL):
last-layer Laplace (fit, marginal likelihood, sampling, predictive), the ensemble moments of
Eq. 7 and the dynamics-shift term of Eq. 8; and the entropy of a sampled distribution by a
Gaussian-mixture fit (DACER's regulator)."""

from dualrl.uq.gmm import GaussianMixture, batched_entropy, fit_gmm, gmm_entropy, gmm_log_prob
from dualrl.uq.laplace import (
    LaplacePosterior,
    fit_laplace,
    gauss_newton_precision,
    log_marginal_likelihood,
    predictive,
    sample_weights,
)
from dualrl.uq.mixture import mixture_moments, shift_distance

__all__ = [
    "GaussianMixture",
    "batched_entropy",
    "fit_gmm",
    "gmm_entropy",
    "gmm_log_prob",
    "LaplacePosterior",
    "fit_laplace",
    "gauss_newton_precision",
    "log_marginal_likelihood",
    "mixture_moments",
    "predictive",
    "sample_weights",
    "shift_distance",
]
