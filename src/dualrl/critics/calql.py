"""Cal-QL's critic pieces (Nakamoto et al. 2023; SPEC §7): Monte-Carlo returns-to-go of the
offline data and the calibrated CQL regulariser.

Pure functions; an algorithm file wires them into an update. Calibration bounds the Q values
of the policy's sampled actions below by V^μ(s), the discounted return-to-go of the behaviour
policy from s, so the conservative push-down cannot drive Q under a value the data already
achieves: this is what lets Cal-QL fine-tune online without the initial dip of CQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training.train_state import TrainState

from dualrl.critics.iql import clip_to_range
from dualrl.critics.sac import (
    PolicySampler,
    SACCriticMethods,
    SACTemperatures,
    update_temperature,
)


def returns_to_go(rewards: np.ndarray, episodes: Sequence[slice], gamma: float,
                  sparse_reward_min: float | None = None) -> np.ndarray:
    """Discounted return-to-go G_t = r_t + γ G_{t+1} within each episode (0 after its last row).

    `episodes` are the episodes' row slices in order, as `Dataset.episode_slices()` gives them;
    they must tile the rows. For sparse-reward tasks pass `sparse_reward_min`: an episode whose
    rewards all equal it never succeeded, and its rows get r_min / (1 − γ), the value of
    failing forever, as the reference implementations do (otherwise a truncated failure would
    look better than it is).
    """
    rewards = np.asarray(rewards, np.float64)
    if rewards.ndim != 1:
        raise ValueError(f"rewards must be one-dimensional, got shape {rewards.shape}")
    starts, stops = [sl.start for sl in episodes], [sl.stop for sl in episodes]
    if not episodes or starts != [0, *stops[:-1]] or stops[-1] != len(rewards):
        shown = list(zip(starts, stops, strict=True))
        raise ValueError(f"episode slices must tile the {len(rewards)} rows in order, got "
                         f"(start, stop) {shown[:3]}{' ...' if len(shown) > 3 else ''}")
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if sparse_reward_min is not None and gamma == 1.0:
        raise ValueError("sparse_reward_min needs gamma < 1 (r_min / (1 − γ) is infinite)")
    out = np.zeros_like(rewards)
    for start, end in zip(starts, stops, strict=True):
        episode = rewards[start:end]
        if sparse_reward_min is not None and np.all(episode == sparse_reward_min):
            out[start:end] = sparse_reward_min / (1.0 - gamma)
            continue
        running = 0.0
        for t in range(end - start - 1, -1, -1):
            running = episode[t] + gamma * running
            out[start + t] = running
    return out.astype(np.float32)


def cql_difference(q_data: jax.Array, q_random: jax.Array, q_policy: jax.Array,
                   log_pi_policy: jax.Array, q_next_policy: jax.Array,
                   log_pi_next_policy: jax.Array, act_dim: int, temperature: float = 1.0,
                   mc_lower_bound: jax.Array | None = None,
                   clip_min: float = -np.inf, clip_max: float = np.inf,
                   ) -> tuple[jax.Array, jax.Array]:
    """The CQL(H) gap per Q head: logsumexp over sampled actions − Q(s, a_data), importance
    sampled, with Cal-QL's calibration.

    Shapes: `q_data` (H, B); `q_random`, `q_policy`, `q_next_policy` (H, B, N) — Q at N
    uniform actions in [−1, 1]^A, at N actions of π(·|s) and at N actions of π(·|s') (both
    evaluated at s); `log_pi_*` (B, N) their log densities. Importance sampling subtracts each
    proposal's log density (uniform: A · log ½). `mc_lower_bound` (B,) is V^μ(s): the policy
    samples' Q values are raised to it before the logsumexp (Cal-QL); None gives plain CQL.
    Returns (gap (H,), fraction of policy-sample Q values the bound raised).
    """
    if mc_lower_bound is not None:
        bound = mc_lower_bound[None, :, None]
        raised = jnp.mean(jnp.concatenate([q_policy < bound, q_next_policy < bound], -1))
        q_policy = jnp.maximum(q_policy, bound)
        q_next_policy = jnp.maximum(q_next_policy, bound)
    else:
        raised = jnp.zeros(())
    uniform_log_density = act_dim * jnp.log(0.5)
    stacked = jnp.concatenate([
        q_random - uniform_log_density,
        q_next_policy - jax.lax.stop_gradient(log_pi_next_policy)[None],
        q_policy - jax.lax.stop_gradient(log_pi_policy)[None],
    ], axis=-1)
    soft_max = temperature * jax.nn.logsumexp(stacked / temperature, axis=-1)
    gap = jnp.clip(soft_max - q_data, clip_min, clip_max)
    return gap.mean(axis=-1), raised


@dataclass(frozen=True)
class CalQLObjective(SACCriticMethods):
    """Cal-QL's critic (SAC backup + calibrated CQL gap) and its SAC actor loss, with the same
    four methods as `critics.iql.IQLObjective` so that any actor can sit on it:

    - `init` -> (Q ensemble, SACTemperatures, target params);
    - `update(critic, temps, target, batch, policy, key)`: one step of the temperature, of
      Q on  Σ_h MSE(Q_h, r + γ(1 − d) Q̄(s', a')) + α_cql · gap_h  and of the Polyak target.
      a' ~ π(·|s') (the max over `n_actions` draws with `max_target_backup`); the gap is
      `cql_difference` at `n_actions` uniform / π(·|s) / π(·|s') actions, calibrated by
      `batch.mc_returns` unless `calibrated` is False (plain CQL). α_cql is `cql_alpha`
      offline and `cql_alpha_online` once `temps.online`; with `lagrange` it is scaled by
      α' = exp(log α'), tuned so that the gap stays at `target_action_gap`;
    - `actor_loss` -> E[α log π(ã|s) − min_h Q_h(s, ã)], at every critic step
      (`actor_period`); `start_online` marks the switch;
    - `likelihood_weights` -> exp(A / α) on buffer actions (`soft_advantage_weights`): the
      weighted-likelihood reading of that loss the Laplace fit uses. Its exact Hessian in the
      head is of no use: ReLU Q networks are piecewise linear in a, so ∇²_a Q = 0 almost
      everywhere, and for a Gaussian ã = μ + σε the entropy term does not depend on μ.
    """

    critic_net: Any
    sample: Any  # the actor's Sampler (critics.sac)
    critic_lr: float = 3e-4
    alpha_lr: float = 1e-4
    gamma: float = 0.99
    tau: float = 0.005
    cql_alpha: float = 10.0
    cql_alpha_online: float = 10.0
    n_actions: int = 10
    cql_temperature: float = 1.0
    lagrange: bool = False
    target_action_gap: float = 0.8
    max_target_backup: bool = False
    clip_diff_min: float = -np.inf
    clip_diff_max: float = np.inf
    calibrated: bool = True
    target_entropy: float | None = None  # None: −|A|
    init_log_alpha: float = 0.0
    reward_scale: float = 1.0  # applied to batch rewards on top of the loop's transform
    reward_bias: float = 0.0
    max_weight: float = 100.0  # of the Laplace likelihood weights
    value_range: tuple[float, float] | None = None  # TD targets clipped to it

    def init(self, key: jax.Array, obs_dim: int, act_dim: int):
        critic, target = self.init_q(key, obs_dim, act_dim)
        # log α' starts at 1 as in the references (α' = e), tuned at the critic's lr
        temps = SACTemperatures.create(self.init_log_alpha, self.alpha_lr, 1.0, self.critic_lr)
        return critic, temps, target

    def actor_period(self, temps: SACTemperatures) -> int:
        return 1  # the actor moves at every critic step

    def update(self, critic: TrainState, temps: SACTemperatures, target_params: Any,
               batch: Any, policy: PolicySampler, key: jax.Array):
        b, act_dim = batch.actions.shape
        n = self.n_actions
        k_next, k_cur, k_cql_next, k_rand = jax.random.split(key, 4)
        target_entropy = self.entropy_target(act_dim)
        rewards = batch.rewards * self.reward_scale + self.reward_bias
        alpha = temps.alpha

        # the current policy's draws (its parameters are not differentiated here)
        cur_actions, cur_log_pi = jax.lax.stop_gradient(policy(batch.observations, k_cur, n))
        nxt_actions, nxt_log_pi = jax.lax.stop_gradient(
            policy(batch.next_observations, k_cql_next, n))
        temps, alpha_loss = update_temperature(temps, cur_log_pi, target_entropy)

        # TD target: min over the target heads at a' ~ π(·|s') (max over n draws if asked)
        if self.max_target_backup:
            next_obs_n = jnp.broadcast_to(batch.next_observations[:, None],
                                          (b, n, batch.next_observations.shape[-1]))
            target_q = self.min_q(target_params)(next_obs_n, nxt_actions).max(axis=-1)
        else:
            a_next, _ = policy(batch.next_observations, k_next, None)
            target_q = self.min_q(target_params)(batch.next_observations, a_next)
        td_target = jax.lax.stop_gradient(clip_to_range(
            rewards + self.gamma * (1.0 - batch.dones) * target_q, self.value_range))

        random_actions = jax.random.uniform(k_rand, (b, n, act_dim), minval=-1.0, maxval=1.0)
        obs_n = jnp.broadcast_to(batch.observations[:, None], (b, n, batch.observations.shape[-1]))
        sampled = jnp.concatenate([random_actions, cur_actions, nxt_actions], axis=1)
        obs_3n = jnp.concatenate([obs_n, obs_n, obs_n], axis=1)
        cql_weight = jnp.where(temps.online, self.cql_alpha_online, self.cql_alpha)
        alpha_prime = temps.alpha_prime
        # V^μ(s) in the rewards above: the buffer computed it with this reward transform
        bound = batch.mc_returns if self.calibrated else None

        def critic_loss_fn(params):
            q_data = self.critic_net.apply(params, batch.observations, batch.actions)  # (H, B)
            q_sampled = self.critic_net.apply(params, obs_3n, sampled)  # (H, B, 3n)
            gap, raised = cql_difference(
                q_data, q_sampled[..., :n], q_sampled[..., n:2 * n], cur_log_pi,
                q_sampled[..., 2 * n:], nxt_log_pi, act_dim, self.cql_temperature,
                bound, self.clip_diff_min, self.clip_diff_max)
            td = ((q_data - td_target[None]) ** 2).mean(axis=1).sum()
            if self.lagrange:
                penalty = alpha_prime * cql_weight * (gap - self.target_action_gap)
            else:
                penalty = cql_weight * gap
            return td + penalty.sum(), (td, gap, raised, q_data)

        (loss, (td, gap, raised, q_data)), grads = jax.value_and_grad(
            critic_loss_fn, has_aux=True)(critic.params)
        critic = critic.apply_gradients(grads=grads)
        if self.lagrange:  # α' rises while the gap exceeds its target, falls below it
            def prime_loss_fn(log_prime):
                prime = jnp.clip(jnp.exp(log_prime["value"]), 0.0, 1e6)
                return -0.5 * jnp.sum(prime * cql_weight * (jax.lax.stop_gradient(gap)
                                                            - self.target_action_gap))

            prime_grad = jax.grad(prime_loss_fn)(temps.log_alpha_prime.params)
            temps = temps.replace(log_alpha_prime=temps.log_alpha_prime.apply_gradients(
                grads=prime_grad))
        target_params = optax.incremental_update(critic.params, target_params, self.tau)
        metrics = {"critic_loss": td, "cql_gap": gap.mean(), "calibration_rate": raised,
                   "q_mean": q_data.mean(), "target_q_mean": target_q.mean(),
                   "alpha": alpha, "alpha_loss": alpha_loss,
                   "cql_weight": cql_weight * (alpha_prime if self.lagrange else 1.0)}
        return critic, temps, target_params, (critic.params, alpha), metrics
