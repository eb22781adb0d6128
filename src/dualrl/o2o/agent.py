"""The small interface through which the one O2O loop drives every method.

An agent is a bundle of PURE functions over an explicit state pytree, so the loop can jit
them, fuse many updates with `lax.scan`, and checkpoint the state with no agent-specific code.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax

from dualrl.data.buffer import Batch, MonteCarloReturns

AgentState = Any  # a pytree (flax struct dataclass of TrainStates, arrays, ...)
Metrics = dict[str, jax.Array]


class ActContext(NamedTuple):
    """What the loop hands an exploring agent besides the observation, all of it prepared
    off the action's critical path (in the previous step's store-and-update call):

    - `predicted_obs`: the agent's own prediction of the current normalised observation,
      made by `Agent.predict_next_obs` from the previous transition (e.g. for a
      dynamics-shift term); meaningless when `first`;
    - `first`: whether this is an episode's first step;
    - `noise`: this step's standard normal draw of action shape, exactly
      `jax.random.normal(key, (B, da))` for the key `explore` receives, so a Gaussian
      exploration draw gives the same numbers whichever of the two it uses.
    """

    predicted_obs: jax.Array  # (B, ds)
    first: jax.Array  # (B,) bool
    noise: jax.Array  # (B, da)


def step_noise(key: jax.Array, t: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """The standard normal action draw of online step t (see ActContext.noise)."""
    return jax.random.normal(jax.random.fold_in(key, t), shape)


class Agent:
    """Base class: subclasses implement `init`, `update` and `act`; hooks default to no-ops.

    `update` and `act` must be pure and jittable. Hooks run in Python between jitted calls
    and may return a new state (e.g. a Laplace refit every N online steps).
    """

    name: str = "agent"
    # LoopConfig fields that define the method (SO2's 10 updates per step, Cal-QL's 50/50
    # mixing): applied over the task preset's loop, under the user's flags
    loop_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def loop_defaults_for(cls, config: Any) -> dict[str, Any]:
        """The loop defaults of the method with this config (DUAL's follow its critic)."""
        return dict(cls.loop_defaults)

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

    def acting_view(self, state: AgentState) -> AgentState:
        """The part of the state that `act` / `explore` read. The loop passes only this to its
        per-step jitted acting call: at batch 1 the cost of flattening and dispatching every
        leaf (critic, optimiser moments, ...) is of the order of the network pass itself."""
        return state

    def predict_next_obs(self, state: AgentState, obs: jax.Array,
                         action: jax.Array) -> jax.Array | None:
        """The agent's prediction of the next normalised observation after (obs, action), or
        None. The loop computes it inside the per-step store-and-update call, after the
        updates, and hands it to the next `explore` as `ActContext.predicted_obs`: the
        action's critical path never waits for it."""
        return None

    def segment_horizon(self) -> int:
        """> 0: every batch the loop hands `update` carries `Batch.segments`, the length-H
        segments of B starting at the batch's rows (a trajectory model trained on the same,
        mixed, batches as the critic); 0: none."""
        return 0

    def monte_carlo_returns(self) -> MonteCarloReturns | None:
        """Whether batches must carry the offline rows' discounted returns-to-go
        (`Batch.mc_returns`, e.g. Cal-QL's calibration bound), and with which discount."""
        return None

    def state_value(self, state: AgentState, obs: jax.Array) -> jax.Array | None:
        """The critic's V(s) (B,) for diagnostics, or None for agents without one."""
        return None

    def q_value(self, state: AgentState, obs: jax.Array, act: jax.Array) -> jax.Array | None:
        """The critic's Q(s, a) (B,) for diagnostics (e.g. the greedy-Q policy), or None."""
        return None

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
        cheap by default; derive per-step randomness as fold_in(key, step). An agent that
        overrides it overrides `online_step_hook_due` too."""
        return state

    def online_step_hook_due(self, step: int) -> bool:
        """Whether `on_online_step` may change the state after online step `step` (the
        vmapped seeds call the hook only then); True at every step for an agent that
        overrides the hook without saying when it acts."""
        return type(self).on_online_step is not Agent.on_online_step


def actor_critic_acting_view(state: Any) -> Any:
    """`acting_view` for states with `actor` / `critic` / `value` / `target_critic_params`
    fields: keeps the actor's parameters and every other field, drops the rest."""
    return state.replace(critic=None, value=None, target_critic_params=None,
                         actor=state.actor.replace(opt_state=None))
