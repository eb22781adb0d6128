"""DACER (Wang et al. 2024, "Diffusion Actor-Critic with Entropy Regulator"; SPEC §10):
Diff-QL's diffusion policy, fine-tuned online with DACER's entropy-regulated update.

Offline the policy is trained exactly as Diff-QL's (BC + η · normalised Q: DACER itself is an
online method, and the paper's O2O comparison starts it from Diff-QL's offline policy).
At the online switch the update becomes DACER's (the reference's `relax/algorithm/dacer.py`):
  1. critic: TD to min_h Q̄_h(s', ã'), ã' the CURRENT policy's sample plus exploration noise
     0.15 · α · N(0, I), clipped to the box;
  2. every `actor_every` critic steps: actor on −min_h Q_h(s, ã) (no BC term), ã sampled
     through all T steps with the same noise; Polyak targets on the same schedule;
  3. every `entropy_every` steps: H = the mean over states of a Gaussian-mixture entropy
     estimate of `entropy_samples` noisy actions per state (uq/gmm.py: 3 full-covariance
     components fitted by EM inside jit — the reference calls sklearn on the host), then
     one Adam step of log α on −log α · (−H + H̄), H̄ = −0.9 · |A|: α, hence the noise,
     grows while the policy is less random than the target and shrinks while it is more.
Acting: one sample plus 0.15 · α noise online (the reference's `get_action`); evaluation
without the noise (`get_deterministic_action`). T = 20 steps and lr 1e-4 as the reference.

Not reproduced: DACER's distributional (DSAC-T) critic — the twin Q of Diff-QL is used —
and its reward scale 0.2 (the loop's reward transform is shared by every method on a task).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training.train_state import TrainState

from dualrl.algos.diffql import DiffQL, DiffQLConfig, DiffQLState
from dualrl.config import check_agent_fields
from dualrl.data.buffer import Batch
from dualrl.o2o.agent import ActContext, Metrics
from dualrl.uq.gmm import batched_entropy


@dataclass
class DACERConfig(DiffQLConfig):
    flag: ClassVar[str] = "dacer"
    steps: int = 20
    actor_lr: float = 1e-4
    critic_lr: float = 1e-4
    grad_norm: float = 0.0  # DACER clips no gradients
    init_alpha: float = 3.0
    alpha_lr: float = 3e-2
    noise_scale: float = 0.15  # exploration noise = noise_scale · α · N(0, I)
    target_entropy_scale: float = 0.9  # H̄ = −scale · |A|
    entropy_every: int = 10_000  # the reference's delay_alpha_update
    entropy_samples: int = 200  # actions per state for the mixture fit
    entropy_states: int = 64  # states of the batch whose entropies are averaged
    gmm_components: int = 3
    actor_every: int = 2  # the reference's delay_update (actor and targets)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_agent_fields(self, self.flag, ("entropy_every", "entropy_samples",
                                             "entropy_states", "gmm_components", "actor_every"))
        if self.laplace:
            raise ValueError("--laplace applies to diffql (Diff-QL w LA), not to dacer")
        if self.init_alpha <= 0:
            raise ValueError(f"init_alpha (--dacer.init-alpha) must be > 0, got {self.init_alpha}")


@flax.struct.dataclass
class DACERState(DiffQLState):
    # (defaults only because the base's last fields have them; `_init` sets every one)
    log_alpha: TrainState | None = None  # params {"value": log α}
    entropy: jax.Array | None = None  # the last entropy estimate
    online: jax.Array | None = None  # () bool: DACER's update from the online switch on
    online_updates: jax.Array | None = None  # () DACER updates so far (its schedules)


class DACER(DiffQL):
    name = "dacer"

    def _init(self, key: jax.Array) -> DACERState:
        base = super()._init(key)
        cfg = self.config
        log_alpha = TrainState.create(
            apply_fn=None, params={"value": jnp.log(jnp.asarray(cfg.init_alpha, jnp.float32))},
            tx=optax.adam(cfg.alpha_lr))
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        return DACERState(**fields, log_alpha=log_alpha, entropy=jnp.zeros(()),
                          online=jnp.zeros((), bool), online_updates=jnp.zeros((), jnp.int32))

    def target_entropy(self) -> float:
        return -self.config.target_entropy_scale * self.act_dim

    def noisy(self, action: jax.Array, log_alpha: jax.Array, key: jax.Array) -> jax.Array:
        """ã = clip(a + noise_scale · α · N(0, I), −1, 1), α not differentiated through."""
        alpha = jnp.exp(jax.lax.stop_gradient(log_alpha))
        noise = jax.random.normal(key, action.shape)
        return jnp.clip(action + self.config.noise_scale * alpha * noise, -1.0, 1.0)

    def policy_entropy(self, params, log_alpha: jax.Array, obs: jax.Array,
                       key: jax.Array) -> jax.Array:
        """Mean over `obs` of the mixture entropy estimate of the noisy policy's actions."""
        cfg = self.config
        n = cfg.entropy_samples
        k_draw, k_noise, k_fit = jax.random.split(key, 3)
        draws = self.sample_actions(params, self._repeat(obs, n), k_draw)
        draws = self.noisy(draws, log_alpha, k_noise).reshape(obs.shape[0], n, -1)
        return batched_entropy(jax.lax.stop_gradient(draws), k_fit, cfg.gmm_components).mean()

    def alpha_step(self, log_alpha: TrainState, entropy: jax.Array) -> TrainState:
        """One Adam step of log α on −log α · (−H + H̄) (the reference's temperature loss)."""
        target = self.target_entropy()
        grads = jax.grad(lambda p: -p["value"] * (-entropy + target))(log_alpha.params)
        return log_alpha.apply_gradients(grads=grads)

    # ------------------------------------------------------------------ update
    def update(self, state: DACERState, batch: Batch, key: jax.Array,
               ) -> tuple[DACERState, Metrics]:
        def offline(st):
            new, metrics = DiffQL.update(self, st, batch, key)
            return new, {**metrics, "alpha": jnp.exp(st.log_alpha.params["value"]),
                         "entropy": st.entropy}

        return jax.lax.cond(state.online, lambda st: self._online_update(st, batch, key),
                            offline, state)

    def _online_update(self, state: DACERState, batch: Batch, key: jax.Array,
                       ) -> tuple[DACERState, Metrics]:
        cfg = self.config
        k_next, k_next_noise, k_pi, k_pi_noise, k_entropy = jax.random.split(key, 5)
        log_alpha = state.log_alpha.params["value"]
        params = state.actor.params

        # 1. Critic: targets at the current policy's noisy next actions.
        next_act = self.noisy(self.sample_actions(params, batch.next_observations, k_next),
                              log_alpha, k_next_noise)
        q_next = self._q(state.target_critic_params, batch.next_observations,
                         next_act).min(axis=0)
        critic, critic_loss, q_data, target = self.critic_step(state.critic, batch, q_next)

        # 2. Actor and targets every `actor_every` steps: −min Q at the noisy samples (the
        #    critic before this step's update, as the reference).
        def actor_loss_fn(p):
            act = self.noisy(self.sample_actions(p, batch.observations, k_pi), log_alpha,
                             k_pi_noise)
            return -self._q(state.critic.params, batch.observations, act).min(axis=0).mean()

        def step(st):  # only on due updates: the T-step sample's backward pass is costly
            loss, grads = jax.value_and_grad(actor_loss_fn)(params)
            return (st.actor.apply_gradients(grads=grads), loss, optax.incremental_update(
                critic.params, st.target_critic_params, cfg.tau))

        count = state.online_updates
        due = count % cfg.actor_every == 0
        actor, actor_loss, target_params = jax.lax.cond(
            due, step, lambda st: (st.actor, jnp.zeros(()), st.target_critic_params), state)

        # 3. Entropy estimate and temperature every `entropy_every` steps.
        def regulate(st):
            obs = batch.observations[:cfg.entropy_states]
            entropy = self.policy_entropy(params, log_alpha, obs, k_entropy)
            return self.alpha_step(st.log_alpha, entropy), entropy

        log_alpha_state, entropy = jax.lax.cond(
            count % cfg.entropy_every == 0, regulate,
            lambda st: (st.log_alpha, st.entropy), state)
        new = state.replace(actor=actor, critic=critic, target_critic_params=target_params,
                            log_alpha=log_alpha_state, entropy=entropy, steps=state.steps + 1,
                            online_updates=count + 1)
        zero = jnp.zeros(())
        return new, {"critic_loss": critic_loss, "q_data": q_data,
                     "actor_loss": actor_loss, "bc_loss": zero, "q_loss": actor_loss,
                     "target_q": target.mean(),
                     "alpha": jnp.exp(log_alpha_state.params["value"]), "entropy": entropy}

    def on_phase_start(self, state: DACERState, phase: str, buffer, buffer_state, key):
        if phase == "online":  # idempotent: also called when a run resumes online
            state = state.replace(online=jnp.ones((), bool))
        return super().on_phase_start(state, phase, buffer, buffer_state, key)

    # ------------------------------------------------------------------ acting
    def acting_view(self, state: DACERState) -> DACERState:
        """Diff-QL's view, less the target critic (DACER acts without Q) and α's moments."""
        return super().acting_view(state).replace(
            target_critic_params=None, log_alpha=state.log_alpha.replace(opt_state=None))

    def act(self, state: DACERState, obs: jax.Array, key: jax.Array, explore: bool,
            context: ActContext | None = None) -> jax.Array:
        if explore:
            return self.explore(state, obs, key, context)[0]
        return self.policy_sample(state, obs, key)

    def policy_sample(self, state: DACERState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """One action per state: T steps, or the distilled student's one (D-DACER, online)."""
        if self.config.distill:
            return self.distilled_or_teacher(state, obs, key)
        return self.sample_actions(state.actor.params, obs, key)

    def explore(self, state: DACERState, obs: jax.Array, key: jax.Array,
                context: ActContext | None = None) -> tuple[jax.Array, Metrics]:
        k_draw, k_noise = jax.random.split(key)
        action = self.policy_sample(state, obs, k_draw)
        log_alpha = state.log_alpha.params["value"]
        return self.noisy(action, log_alpha, k_noise), {"alpha": jnp.exp(log_alpha)}
