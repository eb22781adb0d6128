"""SO2's critic (Zhang et al. 2024, "A Perspective of Q-value Estimation on Offline-to-Online
RL"; SPEC §7): SAC-N's Q ensemble with the perturbed value update.

The backup's next actions are perturbed as TD3's target policy smoothing does,
ã' = clip(a' + clip(ε, −c, c), −1, 1) with ε ~ N(0, σ²) (σ 0.3, c 0.6 in the reference),
and the target is the minimum over ALL ensemble members, minus the entropy term: the
smoothing keeps the Q estimate from spiking on the policy's own actions, the ensemble
minimum keeps it pessimistic; together with more Q updates per environment step (the loop's
`utd`, 10) and an actor that moves only every `actor_every` critic steps online, this is
what lets SO2 fine-tune without the Q overestimation its paper diagnoses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from dualrl.critics.iql import clip_to_range
from dualrl.critics.sac import (
    PolicySampler,
    SACCriticMethods,
    SACTemperatures,
    update_temperature,
)


def perturbed_actions(actions: jax.Array, key: jax.Array, noise_std: float,
                      noise_clip: float) -> jax.Array:
    """a + clip(N(0, σ²), −c, c), kept inside the action box [−1, 1]."""
    noise = jnp.clip(noise_std * jax.random.normal(key, actions.shape), -noise_clip, noise_clip)
    return jnp.clip(actions + noise, -1.0, 1.0)


@dataclass(frozen=True)
class SO2Objective(SACCriticMethods):
    """SO2's critic with the objective interface of `critics.iql.IQLObjective`:

    - `update`: temperature step; Q on Σ_h MSE(Q_h, y) with
      y = r + γ(1 − d)(min_h Q̄_h(s', ã') − α log π(a'|s')), a' ~ π(·|s') and ã' the
      perturbed a' (`perturbed_actions`); Polyak target;
    - `actor_loss` -> E[α log π(ã|s) − min_h Q_h(s, ã)], every `actor_every` critic steps
      once online (`actor_period`; every step offline);
    - `likelihood_weights` -> exp(A / α) on buffer actions, as Cal-QL's (critics.sac).
    """

    critic_net: Any  # a QEnsemble of num_qs members (10)
    sample: Any  # the actor's Sampler (critics.sac)
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    noise_std: float = 0.3
    noise_clip: float = 0.6
    actor_every: int = 10  # online: critic steps per actor step
    backup_entropy: bool = True
    target_entropy: float | None = None  # None: −|A|
    init_log_alpha: float = 0.0
    n_actions: int = 10  # policy draws per state for V^π in the Laplace weights
    max_weight: float = 100.0
    value_range: tuple[float, float] | None = None  # TD targets clipped to it

    def init(self, key: jax.Array, obs_dim: int, act_dim: int):
        critic, target = self.init_q(key, obs_dim, act_dim)
        return critic, SACTemperatures.create(self.init_log_alpha, self.alpha_lr), target

    def actor_period(self, temps: SACTemperatures) -> jax.Array:
        return jnp.where(temps.online, self.actor_every, 1)

    def td_target(self, target_params: Any, batch: Any, policy: PolicySampler, alpha,
                  key: jax.Array) -> jax.Array:
        """y = r + γ(1 − d)(min over the ensemble at the perturbed a' − α log π(a'|s'))."""
        k_next, k_noise = jax.random.split(key)
        a_next, log_pi_next = policy(batch.next_observations, k_next, None)
        a_next = perturbed_actions(a_next, k_noise, self.noise_std, self.noise_clip)
        next_q = self.min_q(target_params)(batch.next_observations, a_next)
        if self.backup_entropy:
            next_q = next_q - alpha * log_pi_next
        y = batch.rewards + self.gamma * (1.0 - batch.dones) * next_q
        return jax.lax.stop_gradient(clip_to_range(y, self.value_range))

    def update(self, critic: TrainState, temps: SACTemperatures, target_params: Any,
               batch: Any, policy: PolicySampler, key: jax.Array):
        act_dim = batch.actions.shape[-1]
        k_target, k_cur = jax.random.split(key)
        target_entropy = self.entropy_target(act_dim)
        alpha = temps.alpha
        _, cur_log_pi = jax.lax.stop_gradient(policy(batch.observations, k_cur, None))
        temps, alpha_loss = update_temperature(temps, cur_log_pi, target_entropy)
        y = self.td_target(target_params, batch, policy, alpha, k_target)

        def critic_loss_fn(params):
            qs = self.critic_net.apply(params, batch.observations, batch.actions)  # (H, B)
            return ((qs - y[None]) ** 2).mean(axis=1).sum(), qs

        (loss, qs), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(critic.params)
        critic = critic.apply_gradients(grads=grads)
        target_params = optax.incremental_update(critic.params, target_params, self.tau)
        metrics = {"critic_loss": loss / qs.shape[0], "q_mean": qs.mean(),
                   "q_ensemble_std": qs.std(axis=0).mean(), "target_q_mean": y.mean(),
                   "alpha": alpha, "alpha_loss": alpha_loss}
        return critic, temps, target_params, (critic.params, alpha), metrics
