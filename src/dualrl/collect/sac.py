"""Soft actor-critic in JAX, the behaviour-policy trainer behind our D4RL-style datasets.

D4RL's locomotion datasets came from SAC runs (medium ≈ a policy at 1/3 of the expert's
return, medium-replay = that run's replay buffer, expert = the trained policy). No dataset can
be downloaded on our machines (SPEC §9), so we regenerate them: this module trains SAC and
keeps what the dataset builder (`behaviour_datasets.py`) needs — actor snapshots with their
evaluation returns, and every transition in step order with its episode boundaries.

SAC as in Haarnoja et al. 2018 (v2): twin Q with target networks (Polyak τ), tanh-Gaussian
actor, entropy temperature tuned towards a target entropy of −act_dim. A time-limit truncation
is not a terminal: its target bootstraps.

The loop runs in chunks of `update_chunk` (k) steps: k environment steps in Python (one jitted
action call each), then one jitted call that writes those k transitions into the device replay
buffer and runs k gradient updates fused in a `jax.lax.scan`. That keeps one update per
environment step (as SAC does) with one dispatch per k updates; the price is that the acting
policy lags the learner by at most k updates. All shapes are static, so each jitted function
compiles once per (config, observation size, action size) and is reused across runs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import flax
import flax.linen as nn
import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dualrl.critics.networks import QEnsemble
from dualrl.nn.mlp import MLP
from dualrl.o2o.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

# log σ bounds of the tanh-Gaussian actor (rlkit's / SpinningUp's values)
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


# ================================================================== configuration
@dataclass(frozen=True)
class SACConfig:
    """The learner's hyper-parameters (Haarnoja et al. 2018 / D4RL's SAC)."""

    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    init_temperature: float = 1.0
    target_entropy: float | None = None  # None: −act_dim

    def __post_init__(self) -> None:
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden needs >= 1 positive width, got {self.hidden}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.init_temperature <= 0.0:
            raise ValueError(f"init_temperature must be > 0, got {self.init_temperature}")


@dataclass(frozen=True)
class SACRunConfig:
    """Budget of one SAC run and of the datasets built from it (see `SAC_PRESETS`)."""

    sac: SACConfig = field(default_factory=SACConfig)
    total_steps: int = 200_000  # environment steps = gradient updates (after update_after)
    start_steps: int = 10_000  # uniform random actions before the policy acts
    update_after: int = 1_000  # first gradient update once this many transitions are stored
    update_chunk: int = 50  # k: env steps between fused update calls (k updates per call)
    snapshot_every: int = 5_000  # actor snapshot + deterministic evaluation
    eval_episodes: int = 5
    checkpoint_every: int = 25_000
    dataset_size: int = 100_000  # transitions of random / medium / expert each
    medium_fraction: float = 1.0 / 3.0  # medium = snapshot closest to this × expert return
    stochastic_datasets: bool = True  # medium/expert rollouts sample actions, as D4RL did
    preset: str = "custom"

    def __post_init__(self) -> None:
        minimum = dict(total_steps=1, start_steps=0, update_after=1, update_chunk=1,
                       snapshot_every=1, eval_episodes=1, checkpoint_every=1, dataset_size=1)
        for name, low in minimum.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        for name in ("total_steps", "snapshot_every", "checkpoint_every"):
            if getattr(self, name) % self.update_chunk:
                raise ValueError(f"{name} ({getattr(self, name)}) must be a multiple of "
                                 f"update_chunk ({self.update_chunk})")
        if not 0.0 < self.medium_fraction < 1.0:
            raise ValueError(f"medium_fraction must be in (0, 1), got {self.medium_fraction}")

    def with_budget(self, total_steps: int | None = None,
                    dataset_size: int | None = None) -> SACRunConfig:
        """Override the step / dataset budget, shrinking the step-based intervals to fit.

        A shorter run keeps about ten snapshots and spends at most a fifth of its steps on
        random actions, so `--steps 2000` still trains and still has medium candidates.
        """
        changes: dict[str, Any] = {}
        if dataset_size is not None:
            changes["dataset_size"] = dataset_size
        if total_steps is not None:
            if total_steps < 1 or total_steps % self.update_chunk:
                raise ValueError(f"steps must be a positive multiple of update_chunk "
                                 f"({self.update_chunk}), got {total_steps}")
            chunk = self.update_chunk
            tenth = max(chunk, total_steps // 10 // chunk * chunk)
            changes.update(
                total_steps=total_steps,
                start_steps=min(self.start_steps, total_steps // 5),
                update_after=max(1, min(self.update_after, total_steps // 10)),
                snapshot_every=min(self.snapshot_every, tenth),
                checkpoint_every=min(self.checkpoint_every, max(chunk, total_steps // 4 // chunk
                                                                * chunk)),
            )
        return dataclasses.replace(self, **changes)


SAC_PRESETS: dict[str, SACRunConfig] = {
    # 2 CPU cores, under 45 min per robot including the datasets (docs/results/collect_sac.md)
    "small": SACRunConfig(total_steps=200_000, start_steps=10_000, snapshot_every=5_000,
                          eval_episodes=5, checkpoint_every=20_000, dataset_size=100_000,
                          preset="small"),
    # D4RL's sizes: 1M transitions per dataset from a 1M-step SAC run
    "paper": SACRunConfig(total_steps=1_000_000, start_steps=10_000, snapshot_every=10_000,
                          eval_episodes=10, checkpoint_every=50_000, dataset_size=1_000_000,
                          preset="paper"),
}


def sac_preset(name: str) -> SACRunConfig:
    try:
        return SAC_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown SAC preset '{name}'; valid presets: "
                         f"{', '.join(SAC_PRESETS)}") from None


def config_to_dict(config: SACRunConfig) -> dict[str, Any]:
    """JSON-ready form (tuples as lists), used in checkpoints and dataset metadata."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


# ================================================================== networks and losses
class TanhGaussianActor(nn.Module):
    """π(a|s) = tanh(N(μ(s), σ(s)²)): one MLP head gives μ and log σ."""

    act_dim: int
    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(hidden=self.hidden, out_dim=2 * self.act_dim)(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def sample_tanh_gaussian(mean: jax.Array, log_std: jax.Array,
                         key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A reparameterised draw a = tanh(u) and log π(a), corrected for the tanh squashing.

    log(1 − tanh²u) = 2·(log 2 − u − softplus(−2u)) stays finite where tanh saturates.
    """
    noise = jax.random.normal(key, mean.shape)
    pre_tanh = mean + jnp.exp(log_std) * noise
    gaussian = jnp.sum(-0.5 * noise**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)
    squash = jnp.sum(2.0 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh)), axis=-1)
    return jnp.tanh(pre_tanh), gaussian - squash


@flax.struct.dataclass
class SACState:
    """Everything the learner updates; pure data, checkpointed as a whole."""

    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    log_temperature: jax.Array
    actor_opt: Any
    critic_opt: Any
    temperature_opt: Any
    updates: jax.Array


class Replay(NamedTuple):
    """The device copy of the replay buffer, allocated once at full capacity.

    Actions are the policy's, in [−1, 1]; `terminals` is 1.0 for true terminals only.
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    terminals: jax.Array


class SACLearner:
    """Networks, optimisers and the jitted pure functions over `SACState` / `Replay`."""

    def __init__(self, config: SACConfig, obs_dim: int, act_dim: int):
        self.config, self.obs_dim, self.act_dim = config, obs_dim, act_dim
        self.actor = TanhGaussianActor(act_dim=act_dim, hidden=config.hidden)
        self.critic = QEnsemble(num_qs=2, hidden=config.hidden)
        self.actor_tx = optax.adam(config.actor_lr)
        self.critic_tx = optax.adam(config.critic_lr)
        self.temperature_tx = optax.adam(config.temperature_lr)
        self.target_entropy = (-float(act_dim) if config.target_entropy is None
                               else float(config.target_entropy))
        self.init = jax.jit(self._init)
        self.explore = jax.jit(self._explore)
        self.greedy = jax.jit(self._greedy)
        self.store = jax.jit(self._store, donate_argnums=0)
        self.store_and_update = jax.jit(self._store_and_update, donate_argnums=1)

    # ------------------------------------------------------------------ init
    def _init(self, key: jax.Array) -> SACState:
        k_actor, k_critic = jax.random.split(key)
        obs = jnp.zeros((1, self.obs_dim))
        actor_params = self.actor.init(k_actor, obs)
        critic_params = self.critic.init(k_critic, obs, jnp.zeros((1, self.act_dim)))
        log_temperature = jnp.log(jnp.asarray(self.config.init_temperature, jnp.float32))
        return SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            log_temperature=log_temperature,
            actor_opt=self.actor_tx.init(actor_params),
            critic_opt=self.critic_tx.init(critic_params),
            temperature_opt=self.temperature_tx.init(log_temperature),
            updates=jnp.zeros((), jnp.int32),
        )

    def empty_replay(self, capacity: int) -> Replay:
        return Replay(
            observations=jnp.zeros((capacity, self.obs_dim), jnp.float32),
            actions=jnp.zeros((capacity, self.act_dim), jnp.float32),
            rewards=jnp.zeros((capacity,), jnp.float32),
            next_observations=jnp.zeros((capacity, self.obs_dim), jnp.float32),
            terminals=jnp.zeros((capacity,), jnp.float32),
        )

    # ------------------------------------------------------------------ acting
    def _explore(self, actor_params: Any, obs: jax.Array, key: jax.Array, step: jax.Array,
                 uniform: jax.Array) -> jax.Array:
        """One action in [−1, 1] for one observation: a policy sample, or uniform noise
        while `uniform` (the start_steps phase). The key is folded with the step, so a run's
        actions are a function of its seed alone."""
        k_policy, k_uniform = jax.random.split(jax.random.fold_in(key, step))
        mean, log_std = self.actor.apply(actor_params, obs)
        action, _ = sample_tanh_gaussian(mean, log_std, k_policy)
        random_action = jax.random.uniform(k_uniform, action.shape, minval=-1.0, maxval=1.0)
        return jnp.where(uniform, random_action, action)

    def _greedy(self, actor_params: Any, obs: jax.Array) -> jax.Array:
        mean, _ = self.actor.apply(actor_params, obs)
        return jnp.tanh(mean)

    # ------------------------------------------------------------------ learning
    def _update(self, state: SACState, replay: Replay, size: jax.Array,
                key: jax.Array) -> tuple[SACState, dict[str, jax.Array]]:
        cfg = self.config
        k_batch, k_next, k_policy = jax.random.split(key, 3)
        idx = jax.random.randint(k_batch, (cfg.batch_size,), 0, size)
        obs, act = replay.observations[idx], replay.actions[idx]
        rew, next_obs, term = replay.rewards[idx], replay.next_observations[idx], \
            replay.terminals[idx]
        temperature = jnp.exp(state.log_temperature)

        # Critic: soft TD target from the target twins' minimum (truncations bootstrap).
        next_mean, next_log_std = self.actor.apply(state.actor_params, next_obs)
        next_act, next_log_prob = sample_tanh_gaussian(next_mean, next_log_std, k_next)
        next_q = self.critic.apply(state.target_critic_params, next_obs, next_act).min(axis=0)
        target = rew + cfg.gamma * (1.0 - term) * (next_q - temperature * next_log_prob)
        target = jax.lax.stop_gradient(target)

        def critic_loss_fn(params):
            q = self.critic.apply(params, obs, act)  # (2, B)
            return ((q - target) ** 2).mean(axis=1).sum(), q

        (critic_loss, q), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            state.critic_params)
        updates, critic_opt = self.critic_tx.update(grads, state.critic_opt)
        critic_params = optax.apply_updates(state.critic_params, updates)

        # Actor: maximise min Q − α log π of reparameterised actions.
        def actor_loss_fn(params):
            mean, log_std = self.actor.apply(params, obs)
            action, log_prob = sample_tanh_gaussian(mean, log_std, k_policy)
            q_pi = self.critic.apply(critic_params, obs, action).min(axis=0)
            return (temperature * log_prob - q_pi).mean(), log_prob

        (actor_loss, log_prob), grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            state.actor_params)
        updates, actor_opt = self.actor_tx.update(grads, state.actor_opt)
        actor_params = optax.apply_updates(state.actor_params, updates)

        # Temperature: push the policy's entropy towards the target.
        entropy_gap = jax.lax.stop_gradient(log_prob + self.target_entropy).mean()
        temperature_grad = -entropy_gap  # d/d log α of −log α · (log π + H̄)
        updates, temperature_opt = self.temperature_tx.update(temperature_grad,
                                                              state.temperature_opt)
        log_temperature = optax.apply_updates(state.log_temperature, updates)

        target_params = optax.incremental_update(critic_params, state.target_critic_params,
                                                 cfg.tau)
        new_state = SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=target_params,
            log_temperature=log_temperature,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            temperature_opt=temperature_opt,
            updates=state.updates + 1,
        )
        metrics = {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "q": q.mean(),
            "entropy": -log_prob.mean(),
            "temperature": temperature,
        }
        return new_state, metrics

    def _store(self, replay: Replay, chunk: Replay, start: jax.Array) -> Replay:
        """Write k consecutive transitions at rows start … start+k−1 (in place: donated)."""
        return jax.tree.map(
            lambda buf, new: jax.lax.dynamic_update_slice_in_dim(buf, new, start, axis=0),
            replay, chunk)

    def _store_and_update(self, state: SACState, replay: Replay, chunk: Replay,
                          start: jax.Array, key: jax.Array
                          ) -> tuple[SACState, Replay, dict[str, jax.Array]]:
        """Store a chunk of k transitions, then run k updates fused in one `lax.scan`."""
        replay = self._store(replay, chunk, start)
        size = start + chunk.rewards.shape[0]
        keys = jax.random.split(key, chunk.rewards.shape[0])
        state, metrics = jax.lax.scan(lambda s, k: self._update(s, replay, size, k), state,
                                      keys)
        return state, replay, jax.tree.map(jnp.mean, metrics)


@functools.lru_cache(maxsize=16)
def sac_learner(config: SACConfig, obs_dim: int, act_dim: int) -> SACLearner:
    """One learner (hence one set of compiled functions) per configuration and shape."""
    return SACLearner(config, obs_dim, act_dim)


# ================================================================== rollouts
class ActionScaler:
    """Maps the policy's [−1, 1] actions onto the environment's Box bounds."""

    def __init__(self, space: gym.Space):
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise TypeError(f"SAC needs a 1-D Box action space, got {space}")
        low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(f"SAC needs bounded actions, got low={low}, high={high}")
        self.low, self.half_range = low, (high - low) / 2.0

    def __call__(self, unit_action: np.ndarray) -> np.ndarray:
        return (self.low + (np.asarray(unit_action, np.float32) + 1.0) * self.half_range
                ).astype(np.float32)


Policy = Callable[[np.ndarray, int], np.ndarray]  # (observation, step) -> environment action


@dataclass
class Rollouts:
    """Transitions of one policy in episode order (terminal = `terminated`, truncation =
    `truncated`, or the cut made by a transition budget). `episode_returns` leaves out an
    episode cut by the budget, unless it is the only one."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    truncations: np.ndarray
    episode_returns: np.ndarray  # finished episodes (the budget's cut one only if alone)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def num_episodes(self) -> int:
        return int((self.terminals | self.truncations).sum())

    @property
    def mean_return(self) -> float:
        return float(self.episode_returns.mean())


def _max_episode_steps(env: gym.Env, default: int = 1000) -> int:
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None)
    return int(limit) if limit else default


def run_policy(env: gym.Env, policy: Policy, *, seed: int, episodes: int | None = None,
               transitions: int | None = None) -> Rollouts:
    """Roll `policy` out for whole `episodes`, or for exactly `transitions` steps.

    With a transition budget the last episode is cut where the budget ends and flagged as a
    truncation (it did end for a reason outside the MDP). The first reset uses `seed`; later
    resets continue the environment's own generator.
    """
    if (episodes is None) == (transitions is None):
        raise ValueError("run_policy needs exactly one of episodes / transitions")
    obs_dim = int(np.prod(env.observation_space.shape))
    act_dim = int(np.prod(env.action_space.shape))
    capacity = transitions if transitions is not None else episodes * _max_episode_steps(env)
    observations = np.zeros((capacity, obs_dim), np.float32)
    next_observations = np.zeros((capacity, obs_dim), np.float32)
    actions = np.zeros((capacity, act_dim), np.float32)
    rewards = np.zeros(capacity, np.float32)
    terminals = np.zeros(capacity, bool)
    truncations = np.zeros(capacity, bool)
    returns: list[float] = []

    obs = np.asarray(env.reset(seed=seed)[0], np.float32)
    n, episode_return = 0, 0.0
    while n < capacity and (episodes is None or len(returns) < episodes):
        action = np.asarray(policy(obs, n), np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        next_obs = np.asarray(next_obs, np.float32)
        observations[n], actions[n], rewards[n] = obs, action, reward
        next_observations[n], terminals[n], truncations[n] = next_obs, terminated, truncated
        episode_return += float(reward)
        n += 1
        if terminated or truncated:
            returns.append(episode_return)
            episode_return = 0.0
            obs = np.asarray(env.reset()[0], np.float32)
        else:
            obs = next_obs
    if not (terminals[n - 1] or truncations[n - 1]):
        truncations[n - 1] = True  # cut by the transition budget
        if not returns:
            returns.append(episode_return)
    return Rollouts(observations[:n], actions[:n], rewards[:n], next_observations[:n],
                    terminals[:n], truncations[:n], np.asarray(returns, np.float64))


def greedy_policy(learner: SACLearner, actor_params: Any, scaler: ActionScaler) -> Policy:
    """The deterministic policy tanh(μ(s)), used to evaluate snapshots."""
    params = jax.device_put(actor_params)  # once, not on every step
    return lambda obs, step: scaler(learner.greedy(params, obs))


def sampling_policy(learner: SACLearner, actor_params: Any, scaler: ActionScaler,
                    key: jax.Array) -> Policy:
    """The stochastic policy a ~ π(·|s) (D4RL's medium / expert data)."""
    params, no = jax.device_put(actor_params), jnp.asarray(False)
    return lambda obs, step: scaler(learner.explore(params, obs, key, step, no))


def uniform_policy(space: gym.spaces.Box, seed: int) -> Policy:
    rng = np.random.default_rng(seed)
    low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
    return lambda obs, step: rng.uniform(low, high).astype(np.float32)


def derived_seed(seed: int, *salt: int) -> int:
    """Independent, reproducible seeds for the run's several environments and generators."""
    return int(np.random.SeedSequence([seed, *salt]).generate_state(1)[0])


# ================================================================== the run
@dataclass
class StepLog:
    """Every training transition in step order (the future medium-replay data).

    `actions` are what the environment received; `policy_actions` the [−1, 1] ones the
    critic learns on (kept so a resumed run rebuilds its device buffer bit for bit).
    """

    observations: np.ndarray
    actions: np.ndarray
    policy_actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    truncations: np.ndarray

    @classmethod
    def empty(cls, capacity: int, obs_dim: int, act_dim: int) -> StepLog:
        return cls(
            observations=np.zeros((capacity, obs_dim), np.float32),
            actions=np.zeros((capacity, act_dim), np.float32),
            policy_actions=np.zeros((capacity, act_dim), np.float32),
            rewards=np.zeros(capacity, np.float32),
            next_observations=np.zeros((capacity, obs_dim), np.float32),
            terminals=np.zeros(capacity, bool),
            truncations=np.zeros(capacity, bool),
        )

    def fields(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replay_rows(self, start: int, stop: int) -> Replay:
        return Replay(self.observations[start:stop], self.policy_actions[start:stop],
                      self.rewards[start:stop], self.next_observations[start:stop],
                      self.terminals[start:stop].astype(np.float32))

    def head(self, steps: int) -> Rollouts:
        """The first `steps` transitions; a cut mid-episode is flagged as a truncation."""
        if not 1 <= steps <= len(self.rewards):
            raise ValueError(f"steps must be in [1, {len(self.rewards)}], got {steps}")
        truncations = self.truncations[:steps].copy()
        ends = self.terminals[:steps] | truncations
        if not ends[-1]:
            truncations[-1] = ends[-1] = True
        bounds = np.concatenate([[0], np.flatnonzero(ends) + 1])
        sums = np.add.reduceat(self.rewards[:steps].astype(np.float64), bounds[:-1])
        if self.truncations[steps - 1] != truncations[-1] and len(sums) > 1:
            sums = sums[:-1]  # the cut episode is unfinished (as in `run_policy`)
        return Rollouts(self.observations[:steps], self.actions[:steps], self.rewards[:steps],
                        self.next_observations[:steps], self.terminals[:steps], truncations,
                        sums)


@dataclass
class PolicySnapshot:
    step: int
    actor_params: Any  # NumPy pytree
    eval_returns: tuple[float, ...]  # deterministic policy, one per episode

    @property
    def eval_return(self) -> float:
        return float(np.mean(self.eval_returns))


@dataclass
class SACRun:
    """A finished (or resumed-and-finished) run: what the dataset builder consumes."""

    config: SACRunConfig
    seed: int
    env_id: str
    learner: SACLearner
    scaler: ActionScaler
    state: SACState
    log: StepLog
    snapshots: list[PolicySnapshot]
    train_seconds: float  # summed over every session of the run
    resumed_at: int | None = None  # step a checkpoint was resumed from


def evaluate(env: gym.Env, policy: Policy, episodes: int, seed: int) -> tuple[float, ...]:
    rollouts = run_policy(env, policy, seed=seed, episodes=episodes)
    return tuple(float(r) for r in rollouts.episode_returns)


# ------------------------------------------------ environment state for exact resumption
def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


def _capture_env(env: gym.Env) -> tuple[np.ndarray | None, dict[str, Any]]:
    """MuJoCo's full integration state, the time-limit counter and the reset generator: with
    them a resumed run continues the interrupted episode exactly. Other environments give
    (None, {...}) and the resumed run starts a new episode instead."""
    base = env.unwrapped
    limit = _time_limit(env)
    meta: dict[str, Any] = {
        "elapsed_steps": None if limit is None else int(limit._elapsed_steps or 0),
        "np_random": base.np_random.bit_generator.state,
    }
    if hasattr(base, "model") and hasattr(base, "data"):
        import mujoco

        spec = int(mujoco.mjtState.mjSTATE_INTEGRATION)
        state = np.zeros(mujoco.mj_stateSize(base.model, spec), np.float64)
        mujoco.mj_getState(base.model, base.data, state, spec)
        return state, meta
    return None, meta


def _restore_env(env: gym.Env, state: np.ndarray | None, meta: dict[str, Any],
                 seed: int) -> bool:
    """Put `env` back where `_capture_env` found it; False when it cannot (new episode)."""
    env.reset(seed=seed)
    if state is None or state.size == 0:
        return False
    import mujoco

    base = env.unwrapped
    mujoco.mj_setState(base.model, base.data, state, int(mujoco.mjtState.mjSTATE_INTEGRATION))
    mujoco.mj_forward(base.model, base.data)
    limit = _time_limit(env)
    if limit is not None and meta.get("elapsed_steps") is not None:
        limit._elapsed_steps = int(meta["elapsed_steps"])
    base.np_random.bit_generator.state = meta["np_random"]
    return True


# ------------------------------------------------ checkpoints
class CheckpointMismatchError(CheckpointError):
    """The checkpoint directory holds a run with another configuration, seed or env."""


def _run_fingerprint(config: SACRunConfig, seed: int, env_id: str) -> dict[str, Any]:
    return {"config": config_to_dict(config), "seed": int(seed), "env_id": env_id}


def _save(ckpt_dir: Path, run: SACRun, step: int, obs: np.ndarray,
          keys: tuple[jax.Array, jax.Array], env: gym.Env) -> None:
    env_state, env_meta = _capture_env(env)
    arrays = {f"log_{k}": v[:step] for k, v in run.log.fields().items()}
    leaves, _ = jax.tree.flatten(jax.device_get(run.state.actor_params))
    for j, leaf in enumerate(leaves):
        stacked = [jax.tree.leaves(s.actor_params)[j] for s in run.snapshots]
        arrays[f"snapshot_leaf_{j}"] = (np.stack(stacked) if stacked
                                        else np.zeros((0, *np.shape(leaf)), np.float32))
    arrays["snapshot_steps"] = np.array([s.step for s in run.snapshots], np.int64)
    arrays["snapshot_returns"] = np.array([s.eval_returns for s in run.snapshots],
                                          np.float64).reshape(len(run.snapshots), -1)
    arrays["current_obs"] = np.asarray(obs, np.float32)
    arrays["keys"] = np.stack([np.asarray(k) for k in keys])  # raw uint32 (PRNGKey) keys
    arrays["env_state"] = env_state if env_state is not None else np.zeros(0)
    meta = {**_run_fingerprint(run.config, run.seed, run.env_id), "step": step,
            "train_seconds": run.train_seconds, "env": env_meta}
    save_checkpoint(ckpt_dir, f"step-{step:09d}", run.state, arrays, meta)


def _load(ckpt_dir: Path, run: SACRun
          ) -> tuple[int, np.ndarray, tuple[jax.Array, jax.Array], np.ndarray, dict]:
    """Restore `run` in place from the latest checkpoint; returns step, obs, the acting and
    update keys, env state and metadata."""
    path = latest_checkpoint(ckpt_dir)
    assert path is not None
    state, arrays, meta = load_checkpoint(path, run.state)
    expected = _run_fingerprint(run.config, run.seed, run.env_id)
    found = {k: meta.get(k) for k in expected}
    if found != expected:
        changed = [k for k in expected if found[k] != expected[k]]
        if "config" in changed:
            old, new = found["config"] or {}, expected["config"]
            changed += [f"config.{k}" for k in new if old.get(k) != new.get(k)]
        raise CheckpointMismatchError(
            f"{path}: this checkpoint belongs to a different SAC run (differs in: "
            f"{', '.join(changed)}); delete {ckpt_dir} or pass overwrite to start afresh")
    step = int(meta["step"])
    for name, target in run.log.fields().items():
        target[:step] = arrays[f"log_{name}"]
    treedef = jax.tree.structure(run.state.actor_params)
    n_leaves = treedef.num_leaves
    snapshot_steps = arrays["snapshot_steps"]
    run.snapshots = [
        PolicySnapshot(
            step=int(snapshot_steps[i]),
            actor_params=jax.tree.unflatten(
                treedef, [arrays[f"snapshot_leaf_{j}"][i] for j in range(n_leaves)]),
            eval_returns=tuple(float(r) for r in arrays["snapshot_returns"][i]),
        )
        for i in range(len(snapshot_steps))
    ]
    run.state = jax.tree.map(jnp.asarray, state)
    run.train_seconds = float(meta.get("train_seconds", 0.0))
    keys = jnp.asarray(arrays["keys"])
    return step, arrays["current_obs"], (keys[0], keys[1]), arrays["env_state"], meta


# ------------------------------------------------ training
def train_sac(
    make_env: Callable[[], gym.Env],
    config: SACRunConfig,
    seed: int = 0,
    *,
    checkpoint_dir: str | Path | None = None,
    restart_mismatched: bool = False,
    on_snapshot: Callable[[PolicySnapshot, dict[str, float]], None] | None = None,
) -> SACRun:
    """Train SAC in `make_env()` for `config.total_steps` steps and return the run.

    Every `snapshot_every` steps (and at the end) the actor is copied and evaluated
    deterministically for `eval_episodes` episodes in a separate environment; `on_snapshot`
    then gets the snapshot and the chunk's training metrics. With `checkpoint_dir`, the run
    is checkpointed every `checkpoint_every` steps and at the end, and a later call with the
    same arguments resumes from the latest checkpoint. A checkpoint of a different run
    (config, seed or environment) raises `CheckpointMismatchError`, or is deleted when
    `restart_mismatched`.
    """
    env, eval_env = make_env(), make_env()
    env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    obs_dim = int(np.prod(env.observation_space.shape))
    scaler = ActionScaler(env.action_space)
    act_dim = int(scaler.low.shape[0])
    learner = sac_learner(config.sac, obs_dim, act_dim)
    # separate streams: acting noise (folded with the step) and updates (folded with the
    # chunk's first step) must never reuse each other's keys
    init_key, act_key, update_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    run = SACRun(config=config, seed=seed, env_id=env_id, learner=learner, scaler=scaler,
                 state=learner.init(init_key),
                 log=StepLog.empty(config.total_steps, obs_dim, act_dim), snapshots=[],
                 train_seconds=0.0)

    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    step = 0
    if ckpt_dir is not None and latest_checkpoint(ckpt_dir) is not None:
        try:
            step, obs, (act_key, update_key), env_state, meta = _load(ckpt_dir, run)
        except CheckpointMismatchError:
            if not restart_mismatched:
                raise
            shutil.rmtree(ckpt_dir)
    if step:
        run.resumed_at = step
        if step < config.total_steps and not _restore_env(env, env_state, meta["env"],
                                                          derived_seed(seed, 0, step)):
            run.log.truncations[step - 1] |= not run.log.terminals[step - 1]
            obs = np.asarray(env.reset(seed=derived_seed(seed, 0, step))[0], np.float32)
    else:
        obs = np.asarray(env.reset(seed=derived_seed(seed, 0))[0], np.float32)

    session_start = time.perf_counter()
    seconds_before = run.train_seconds
    replay = learner.empty_replay(config.total_steps)
    if step:
        replay = learner.store(replay, run.log.replay_rows(0, step), jnp.asarray(0))
    chunk = config.update_chunk
    log = run.log
    metrics: dict[str, float] = {}
    while step < config.total_steps:
        params = run.state.actor_params
        for t in range(step, step + chunk):
            unit_action = np.asarray(learner.explore(params, obs, act_key, t,
                                                     t < config.start_steps))
            action = scaler(unit_action)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            next_obs = np.asarray(next_obs, np.float32)
            log.observations[t], log.actions[t], log.policy_actions[t] = obs, action, unit_action
            log.rewards[t], log.next_observations[t] = reward, next_obs
            log.terminals[t], log.truncations[t] = terminated, truncated
            obs = (np.asarray(env.reset()[0], np.float32) if terminated or truncated
                   else next_obs)
        rows = log.replay_rows(step, step + chunk)
        if step + chunk >= config.update_after:
            run.state, replay, chunk_metrics = learner.store_and_update(
                run.state, replay, rows, jnp.asarray(step), jax.random.fold_in(update_key, step))
        else:
            replay, chunk_metrics = learner.store(replay, rows, jnp.asarray(step)), {}
        step += chunk

        final = step == config.total_steps
        if step % config.snapshot_every == 0 or final:
            metrics = {k: float(v) for k, v in chunk_metrics.items()}
            bad = [k for k, v in metrics.items() if not math.isfinite(v)]
            if bad:
                raise FloatingPointError(f"SAC diverged by step {step}: non-finite {bad}")
            params = jax.device_get(run.state.actor_params)
            returns = evaluate(eval_env, greedy_policy(learner, params, scaler),
                               config.eval_episodes, derived_seed(seed, 1, step))
            run.snapshots.append(PolicySnapshot(step, params, returns))
        run.train_seconds = seconds_before + time.perf_counter() - session_start
        if ckpt_dir is not None and (step % config.checkpoint_every == 0 or final):
            _save(ckpt_dir, run, step, obs, (act_key, update_key), env)
        if on_snapshot is not None and run.snapshots and run.snapshots[-1].step == step:
            on_snapshot(run.snapshots[-1], {**metrics, "seconds": run.train_seconds})
    if not run.snapshots:  # resumed at the end of a run saved without its final snapshot
        raise CheckpointError("the SAC run has no policy snapshots")
    return run
