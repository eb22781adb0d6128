"""Actors: networks that map states to action distributions."""

from dualrl.actors.gaussian import GaussianActor, gaussian_log_prob

__all__ = ["GaussianActor", "gaussian_log_prob"]
