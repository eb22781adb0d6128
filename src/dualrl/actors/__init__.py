"""Actors: networks that map states to action distributions."""

from dualrl.actors.gaussian import GaussianActor, gaussian_log_prob, sample_gaussian
from dualrl.actors.tanh_gaussian import (
    TanhGaussianActor,
    sample_tanh_gaussian,
    tanh_gaussian_log_prob,
    temperature_loss,
)

__all__ = ["GaussianActor", "TanhGaussianActor", "gaussian_log_prob", "sample_gaussian",
           "sample_tanh_gaussian",
           "tanh_gaussian_log_prob", "temperature_loss"]
