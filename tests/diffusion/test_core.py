"""Schedules, parameterisations, samplers and inpainting (no training needed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.diffusion.ema import ema_update
from dualrl.diffusion.parameterization import PARAMETERIZATIONS, target, to_x_eps
from dualrl.diffusion.planner import Layout, PlannerConfig, TrajectoryPlanner
from dualrl.diffusion.samplers import ddim_sample, ddpm_sample
from dualrl.diffusion.schedules import Schedule


@pytest.mark.parametrize("kind", ["cosine", "vp"])
def test_schedule_is_variance_preserving_and_monotone(kind):
    sch = Schedule(kind=kind)
    t = jnp.linspace(0, 1, 101)
    alpha, sigma = sch.alpha_sigma(t)
    np.testing.assert_allclose(alpha**2 + sigma**2, 1.0, atol=1e-5)
    assert float(alpha[0]) == pytest.approx(1.0, abs=1e-4)
    assert float(alpha[-1]) < 0.1
    assert (np.diff(np.asarray(alpha)) <= 1e-7).all()
    assert (np.diff(np.asarray(sch.log_snr(t[1:-1]))) < 0).all()


def test_unknown_schedule_raises():
    with pytest.raises(ValueError, match="valid: cosine, vp"):
        Schedule(kind="linear").alpha_sigma(jnp.ones(1))


@pytest.mark.parametrize("kind", PARAMETERIZATIONS)
def test_parameterizations_round_trip(kind):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(k1, (5, 7))
    eps = jax.random.normal(k2, (5, 7))
    alpha, sigma = Schedule().alpha_sigma(jnp.full((5, 1), 0.4))
    z = alpha * x + sigma * eps
    x_hat, eps_hat = to_x_eps(kind, target(kind, x, eps, alpha, sigma), z, alpha, sigma)
    np.testing.assert_allclose(x_hat, x, atol=1e-4)
    np.testing.assert_allclose(eps_hat, eps, atol=1e-4)


def test_unknown_parameterization_raises():
    with pytest.raises(ValueError, match="valid"):
        target("score", jnp.ones(1), jnp.ones(1), 1.0, 0.0)


def _random_planner(**kw):
    cfg = PlannerConfig(horizon=4, hidden=(32, 32), **kw)
    planner = TrajectoryPlanner(cfg, obs_dim=3, act_dim=2)
    return planner, planner.init(jax.random.PRNGKey(0)).params


@pytest.mark.parametrize("steps", [1, 3, 16])
@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_inpainted_slots_equal_condition_exactly(steps, sampler):
    planner, params = _random_planner()
    lay = planner.layout
    s0 = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    a0 = jax.random.normal(jax.random.PRNGKey(2), (6, 2))
    noise = planner.noise(jax.random.PRNGKey(3), 6)
    for cond_a in (None, a0):
        plan = planner.sample(params, s0, noise, cond_a, jax.random.PRNGKey(4), steps=steps,
                              sampler=sampler)
        obs, act = lay.unflatten(plan)
        np.testing.assert_array_equal(np.asarray(obs[:, 0]), np.asarray(s0))
        if cond_a is not None:
            np.testing.assert_array_equal(np.asarray(act[:, 0]), np.asarray(a0))


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_inpainting_before_every_network_call(sampler):
    """At run time, every network input holds the exact condition in its masked slots."""
    lay = Layout(4, 2, 1)
    mask = lay.slot_mask(1, 1)
    values = lay.condition_values(jnp.array([[0.5, -0.25]]), jnp.array([[0.75]]))
    errors = []

    def denoise(z, t):
        err = jnp.abs(jnp.where(mask, z - values, 0.0)).max()
        jax.debug.callback(lambda e: errors.append(float(e)), err)
        return jnp.ones_like(z) * 3.0  # a bad network that would overwrite the condition

    noise = jnp.ones((1, lay.dim)) * 9.0
    if sampler == "ddim":
        x = ddim_sample(denoise, Schedule(), "v", noise, 5, mask, values)
    else:
        x = ddpm_sample(denoise, Schedule(), "v", jax.random.PRNGKey(0), noise, 5, mask, values)
    jax.block_until_ready(x)
    assert len(errors) == 5 and max(errors) == 0.0
    np.testing.assert_array_equal(np.asarray(x[0, :3]), [0.5, -0.25, 0.75])


def test_ddim_is_deterministic_given_noise_and_ddpm_depends_on_key():
    planner, params = _random_planner()
    s0 = jnp.zeros((4, 3))
    noise = planner.noise(jax.random.PRNGKey(5), 4)
    a = planner.sample(params, s0, noise, steps=8)
    b = planner.sample(params, s0, noise, steps=8)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = planner.sample(params, s0, planner.noise(jax.random.PRNGKey(6), 4), steps=8)
    assert not np.allclose(np.asarray(a), np.asarray(c))
    d1 = planner.sample(params, s0, noise, None, jax.random.PRNGKey(1), steps=8, sampler="ddpm")
    d2 = planner.sample(params, s0, noise, None, jax.random.PRNGKey(2), steps=8, sampler="ddpm")
    assert not np.allclose(np.asarray(d1), np.asarray(d2))


def test_sampling_is_one_compiled_loop():
    """The number of network calls traced does not grow with K (scan, not a Python loop)."""
    calls = {"n": 0}

    def denoise(z, t):
        calls["n"] += 1
        return jnp.zeros_like(z)

    for steps in (2, 100):
        calls["n"] = 0
        jax.jit(lambda n, k=steps: ddim_sample(denoise, Schedule(), "v", n, k, jnp.zeros(6, bool),
                                      jnp.zeros((1, 6))))(jnp.ones((1, 6)))
        assert calls["n"] <= 4  # traced per unrolled copy, never once per step


def test_ema_update():
    new = ema_update({"w": jnp.zeros(3)}, {"w": jnp.ones(3)}, 0.9)
    np.testing.assert_allclose(new["w"], 0.1)


def test_layout_slots():
    lay = Layout(3, 2, 1)
    x = lay.flatten(jnp.arange(6.0).reshape(1, 3, 2), 10 + jnp.arange(3.0).reshape(1, 3, 1))
    np.testing.assert_array_equal(np.asarray(lay.action_slot(x)), [[10.0]])
    np.testing.assert_array_equal(np.asarray(lay.next_state_slot(x)), [[2.0, 3.0]])
    assert np.asarray(lay.slot_mask(1, 1)).sum() == 3
