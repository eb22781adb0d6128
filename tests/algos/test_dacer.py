"""DACER: the temperature moves toward the entropy target, the online update's schedules
(actor every 2 updates, entropy and α every N), and resume equivalence across the switch
(D-DACER: the distilled student is part of the state)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.algos.dacer import DACER, DACERConfig
from dualrl.config import LoopConfig, TrainConfig
from dualrl.data.buffer import Batch

OBS_DIM, ACT_DIM = 2, 2


def _agent(**cfg) -> tuple[DACER, object]:
    agent = DACER(DACERConfig(hidden=(8,), actor_hidden=(8, 8), steps=2, entropy_samples=16,
                              entropy_states=4, **cfg))
    return agent, agent.init(jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)


def test_alpha_moves_toward_the_entropy_target():
    """H̄ = −0.9 · |A| = −1.8: an entropy above it lowers α (less noise), below raises it."""
    agent, state = _agent()
    assert agent.target_entropy() == pytest.approx(-1.8)
    alpha = lambda s: float(jnp.exp(s.params["value"]))  # noqa: E731
    assert alpha(agent.alpha_step(state.log_alpha, jnp.asarray(0.5))) < 3.0
    assert alpha(agent.alpha_step(state.log_alpha, jnp.asarray(-4.0))) > 3.0


def test_online_update_schedules_actor_entropy_and_alpha():
    """Before the switch: Diff-QL's update (BC term, α fixed). After: no BC term; the entropy
    is estimated and α stepped at DACER update 0, 3, 6 (entropy_every 3); the actor moves at
    even updates only (actor_every 2); the noisy policy's entropy falls with α."""
    agent, state = _agent(entropy_every=3)
    rng = np.random.default_rng(0)
    f32 = np.float32
    batch = Batch(observations=jnp.asarray(rng.normal(size=(32, OBS_DIM)), f32),
                  actions=jnp.asarray(rng.uniform(-1, 1, (32, ACT_DIM)), f32),
                  rewards=jnp.ones(32, f32),
                  next_observations=jnp.asarray(rng.normal(size=(32, OBS_DIM)), f32),
                  dones=jnp.zeros(32, f32))
    update = jax.jit(agent.update)
    state, metrics = update(state, batch, jax.random.PRNGKey(1))
    assert float(metrics["bc_loss"]) > 0.0 and float(metrics["alpha"]) == pytest.approx(3.0)
    state = agent.on_phase_start(state, "online", None, None, jax.random.PRNGKey(2))
    alphas, entropies = [], []
    for i in range(7):
        before = state
        state, metrics = update(state, batch, jax.random.PRNGKey(10 + i))
        assert float(metrics["bc_loss"]) == 0.0
        moved = not np.allclose(state.actor.params["params"]["output"]["kernel"],
                                before.actor.params["params"]["output"]["kernel"])
        assert moved == (i % 2 == 0), i
        alpha_changed = float(state.log_alpha.params["value"]) != float(
            before.log_alpha.params["value"])
        assert alpha_changed == (i % 3 == 0), i
        alphas.append(float(metrics["alpha"]))
        entropies.append(float(metrics["entropy"]))
    assert int(state.online_updates) == 7
    # the noisy 2-d policy's entropy (≈ log-volume of noise 0.45-wide) is above −1.8: α falls
    assert entropies[0] > agent.target_entropy()
    assert alphas[-1] < alphas[0] < 3.0


def test_laplace_is_refused():
    with pytest.raises(ValueError, match="diffql"):
        DACERConfig(laplace=True)


def test_resumed_d_dacer_run_matches_uninterrupted(resume_matches):
    """D-DACER crashed mid-online, after α and the entropy estimate have moved and the
    student has been distilled twice (at the switch and at online step 40); the resumed run
    distils again at step 80 as the uninterrupted one does."""
    loop = LoopConfig(offline_steps=50, online_steps=100, eval_every=50, eval_episodes=2,
                      checkpoint_every=50, scan_chunk=50, batch_size=16, progress=False)
    cfg = TrainConfig(task="frozenlake-shift", algo="dacer", seed=1, preset="quick", loop=loop,
                      agent=DACERConfig(hidden=(8,), actor_hidden=(8, 8), steps=2,
                                        entropy_every=25, entropy_samples=8, entropy_states=4,
                                        candidates=2, distill=True, distill_steps_per_round=10,
                                        redistill_every=40),
                      env=dict(map="4x4", data_episodes=50))
    _, records = resume_matches(cfg, 75)
    online = [r for r in records if r["phase"] == "online"]
    assert online and all(r["alpha"] != pytest.approx(3.0) for r in online)
    assert online[-1]["distillations"] == 3 and np.isfinite(online[-1]["distill_policy_rel_mse"])
