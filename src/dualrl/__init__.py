"""dualrl: offline-to-online RL with diffusion models (DUAL) in JAX."""

__version__ = "0.1.0"
