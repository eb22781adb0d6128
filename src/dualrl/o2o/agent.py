"""The small interface through which the one O2O loop drives every method.

An agent is a bundle of PURE functions over an explicit state pytree, so the loop can jit
them, fuse many updates with `lax.scan`, and checkpoint the state with no agent-specific code.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from dualrl.data.buffer import Batch

AgentState = Any  # a pytree (flax struct dataclass of TrainStates, arrays, ...)
Metrics = dict[str, jax.Array]


class ActContext(NamedTuple):
    """What an exploring agent may know of the previous step (e.g. for a dynamics-shift
    term): the previous normalised observation and stored action, and whether this is the
    first step of an episode (then there is no previous step)."""

    prev_obs: jax.Array  # (B, ds)
    prev_action: jax.Array  # (B, da)
    first: jax.Array  # (B,) bool


class Agent:
    """Base class: subclasses implement `init`, `update` and `act`; hooks default to no-ops.

    `update` and `act` must be pure and jittable. Hooks run in Python between jitted calls
    and may return a new state (e.g. a Laplace refit every N online steps).
    """

    name: str = "agent"

    def init(self, key: jax.Array, obs_dim: int, act_dim: int) -> AgentState:
        raise NotImplementedError

    def update(self, state: AgentState, batch: Batch, key: jax.Array,
               ) -> tuple[AgentState, Metrics]:
        raise NotImplementedError

    def act(self, state: AgentState, obs: jax.Array, key: jax.Array, explore: bool,
            context: ActContext | None = None) -> jax.Array:
        """Actions for a batch of normalised observations (unclipped: the loop clips)."""
        raise NotImplementedError

    def explore(self, state: AgentState, obs: jax.Array, key: jax.Array,
                context: ActContext | None = None) -> tuple[jax.Array, Metrics]:
        """Online acting: exploratory actions plus scalar diagnostics to log (pure)."""
        return self.act(state, obs, key, True, context), {}

    def diagnostics(self, state: AgentState) -> dict[str, float]:
        """Host-side values logged with every evaluation (e.g. the refit prior precision)."""
        return {}

    # ------------------------------------------------------------------ hooks
    def on_phase_start(self, state: AgentState, phase: str, buffer: Any,
                       buffer_state: Any, key: jax.Array) -> AgentState:
        """Called once when a phase ('offline' / 'online') starts or resumes."""
        return state

    def on_online_step(self, state: AgentState, step: int, buffer: Any, buffer_state: Any,
                       key: jax.Array) -> AgentState:
        """Called after every online environment step (before the next action). Pure-Python
        cheap by default; derive per-step randomness as fold_in(key, step)."""
        return state
