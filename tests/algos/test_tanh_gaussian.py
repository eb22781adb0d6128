"""SAC's tanh-Gaussian actor: a normalised density, reparameterised draws, the temperature."""

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.actors.tanh_gaussian import (
    TanhGaussianActor,
    sample_tanh_gaussian,
    tanh_gaussian_log_prob,
    temperature_loss,
)


def test_squashed_density_integrates_to_one_and_matches_the_change_of_variables():
    mean, log_std = jnp.array([[0.7]]), jnp.array([[0.3]])
    a = jnp.linspace(-1 + 1e-6, 1 - 1e-6, 200_001)
    u = jnp.arctanh(a)[:, None]
    log_p = tanh_gaussian_log_prob(u, mean, log_std)
    np.testing.assert_allclose(np.trapezoid(np.exp(np.asarray(log_p)), np.asarray(a)), 1.0,
                               atol=1e-3)
    sigma = np.exp(0.3)
    direct = (-0.5 * ((np.asarray(u[:, 0]) - 0.7) / sigma) ** 2 - np.log(sigma)
              - 0.5 * np.log(2 * np.pi) - np.log1p(-np.asarray(a) ** 2))
    mid = slice(50_000, 150_000)  # away from the ends, where 1 − a² loses digits
    np.testing.assert_allclose(np.asarray(log_p)[mid], direct[mid], rtol=1e-4, atol=1e-4)


def test_log_prob_stays_finite_where_tanh_saturates():
    log_p = tanh_gaussian_log_prob(jnp.array([[30.0, -30.0]]), jnp.zeros((1, 2)),
                                   jnp.zeros((1, 2)))
    assert np.isfinite(np.asarray(log_p)).all()


def test_samples_are_in_bounds_with_the_right_shapes_and_differentiable():
    actor = TanhGaussianActor(act_dim=3, hidden=(16, 16))
    obs = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    params = actor.init(jax.random.PRNGKey(1), obs)
    mean, log_std = actor.apply(params, obs)
    a, log_pi = sample_tanh_gaussian(jax.random.PRNGKey(2), mean, log_std, num_samples=7)
    assert a.shape == (5, 7, 3) and log_pi.shape == (5, 7)
    assert np.all(np.abs(np.asarray(a)) < 1.0)
    a1, log_pi1 = sample_tanh_gaussian(jax.random.PRNGKey(2), mean, log_std)
    assert a1.shape == (5, 3) and log_pi1.shape == (5,)

    def objective(p):
        m, s = actor.apply(p, obs)
        return sample_tanh_gaussian(jax.random.PRNGKey(3), m, s)[0].sum()

    grads = jax.grad(objective)(params)
    assert any(float(jnp.abs(g).sum()) > 0 for g in jax.tree_util.tree_leaves(grads))


def test_temperature_rises_below_the_target_entropy_and_falls_above():
    # entropy −E log π = −2 below a target of −1: the gradient step raises log α
    low_entropy = jax.grad(temperature_loss)(jnp.zeros(()), jnp.full((8,), 2.0), -1.0)
    high_entropy = jax.grad(temperature_loss)(jnp.zeros(()), jnp.full((8,), -2.0), -1.0)
    assert float(low_entropy) < 0 < float(high_entropy)
