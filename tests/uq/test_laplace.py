"""Last-layer Laplace against closed forms (Bayesian linear regression) and its uses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.uq import (
    fit_laplace,
    gauss_newton_precision,
    mixture_moments,
    predictive,
    sample_weights,
    shift_distance,
)
from dualrl.uq.laplace import precision_matrix, sampled_outputs, with_bias


def _blr_data(n=400, f=5, k=2, noise=0.3, prior_precision=2.0, seed=0):
    rng = np.random.default_rng(seed)
    phi = rng.standard_normal((n, f))
    w_true = rng.standard_normal((f + 1, k)) / np.sqrt(prior_precision)
    y = with_bias(jnp.asarray(phi)) @ w_true + noise * rng.standard_normal((n, k))
    return jnp.asarray(phi, jnp.float32), jnp.asarray(y, jnp.float32), w_true


def test_matches_bayesian_linear_regression_posterior():
    phi, y, _ = _blr_data()
    noise, lam = 0.3, 2.0
    x = np.asarray(with_bias(phi), np.float64)
    # closed-form posterior: P = XᵀX/σ² + λI, mean = P⁻¹ Xᵀy/σ²
    precision = x.T @ x / noise**2 + lam * np.eye(x.shape[1])
    cov = np.linalg.inv(precision)
    mean = cov @ x.T @ np.asarray(y, np.float64) / noise**2
    inv_var = jnp.full(y.shape, 1.0 / noise**2)
    post = fit_laplace(phi, jnp.ones(len(phi)), inv_var, jnp.asarray(mean, jnp.float32),
                       jax.random.PRNGKey(0), num_samples=4000, prior_precision=lam)
    for j in range(2):
        p_j = np.asarray(precision_matrix(post)[j])
        np.testing.assert_allclose(p_j, precision, rtol=1e-3, atol=1e-2)
    # samples have the posterior mean and covariance
    s = np.asarray(post.samples[:, :, 0], np.float64)
    np.testing.assert_allclose(s.mean(0), mean[:, 0], atol=4 * np.sqrt(cov.diagonal().max()
                                                                         / 4000) + 1e-4)
    np.testing.assert_allclose(np.cov(s.T), cov, atol=0.15 * np.abs(cov).max())
    # closed-form predictive variance φ̃ᵀ P⁻¹ φ̃ equals the exact one
    test = phi[:7]
    m, v = predictive(post, test)
    xt = np.asarray(with_bias(test), np.float64)
    np.testing.assert_allclose(np.asarray(v[:, 0]), np.einsum("bf,fg,bg->b", xt, cov, xt),
                               rtol=1e-3)
    np.testing.assert_allclose(np.asarray(m), xt @ mean, rtol=1e-4, atol=1e-5)
    # Monte Carlo predictive from the kept weight sets agrees with the closed form
    mc = np.asarray(sampled_outputs(post, test))
    np.testing.assert_allclose(mc.var(0)[:, 0], np.asarray(v[:, 0]), rtol=0.2)


def test_chunked_precision_equals_direct_sum():
    phi, y, _ = _blr_data(n=1000)
    w = jnp.asarray(np.random.default_rng(1).uniform(0.1, 3.0, 1000), jnp.float32)
    inv_var = jnp.asarray(np.random.default_rng(2).uniform(0.5, 2.0, (1000, 2)), jnp.float32)
    h = gauss_newton_precision(phi, w, inv_var, temperature=2.0, chunk=128)
    x = np.asarray(with_bias(phi), np.float64)
    w_bar = np.asarray(w) / np.asarray(w).mean()
    for j in range(2):
        direct = (x * (w_bar * np.asarray(inv_var[:, j]))[:, None]).T @ x / 2.0
        np.testing.assert_allclose(np.asarray(h[j]), direct, rtol=1e-4)


@pytest.mark.parametrize("true_lambda", [0.1, 1.0, 10.0])
def test_marginal_likelihood_recovers_prior_precision(true_lambda):
    rng = np.random.default_rng(3)
    f, k = 30, 4
    phi = jnp.asarray(rng.standard_normal((2000, f)), jnp.float32)
    w_true = rng.standard_normal((f + 1, k)) / np.sqrt(true_lambda)
    inv_var = jnp.full((2000, k), 1.0)
    post = fit_laplace(phi, jnp.ones(2000), inv_var, jnp.asarray(w_true, jnp.float32),
                       jax.random.PRNGKey(0))
    chosen = float(post.prior_precision)
    assert true_lambda / 2.5 <= chosen <= true_lambda * 2.5, (true_lambda, chosen)


def test_epistemic_variance_grows_away_from_data():
    rng = np.random.default_rng(4)
    phi = jnp.asarray(rng.uniform(-1, 1, (500, 3)), jnp.float32)
    post = fit_laplace(phi, jnp.ones(500), jnp.ones((500, 1)), jnp.zeros((4, 1)),
                       jax.random.PRNGKey(0), prior_precision=1.0)
    near = jnp.zeros((1, 3))
    far = jnp.full((1, 3), 10.0)
    _, v_near = predictive(post, near)
    _, v_far = predictive(post, far)
    assert float(v_far[0, 0]) > 50 * float(v_near[0, 0])


def test_sample_weights_shape_and_spread():
    eigvecs = jnp.stack([jnp.eye(3), jnp.eye(3)])
    eigvals = jnp.array([[4.0] * 3, [0.25] * 3]) - 1e-3  # precisions 4 and 0.25 with λ
    s = sample_weights(jnp.zeros((3, 2)), eigvecs, eigvals, 1e-3, jax.random.PRNGKey(0), 5000)
    assert s.shape == (5000, 3, 2)
    np.testing.assert_allclose(np.asarray(s.var(0)), [[0.25, 4.0]] * 3, rtol=0.1)


def test_weight_draws_are_a_continuous_function_of_the_data():
    """The same key gives the same draws whatever signs `eigh` picks for the eigenvectors,
    and nearly the same draws for a 1e-6 change of the features (the old Q diag(·) ξ draw
    was uncorrelated with itself after such a change: vmapped seeds and float-order changes
    then acted with unrelated sub-policies). The law is still N(W^MAP, P⁻¹)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4))
    precision = a @ a.T + 0.5 * np.eye(4)  # a non-diagonal precision, λ = 0 below
    eigvals, eigvecs = np.linalg.eigh(precision)
    flipped = eigvecs * np.array([1.0, -1.0, -1.0, 1.0])
    key = jax.random.PRNGKey(0)
    draw = lambda q: np.asarray(sample_weights(  # noqa: E731
        jnp.zeros((4, 1)), jnp.asarray(q[None], jnp.float32),
        jnp.asarray(eigvals[None], jnp.float32), 0.0, key, 20_000))
    base = draw(eigvecs)
    np.testing.assert_allclose(draw(flipped), base, atol=1e-4)
    np.testing.assert_allclose(np.cov(base[:, :, 0].T), np.linalg.inv(precision), atol=0.03,
                               rtol=0.05)

    phi = jnp.asarray(rng.uniform(-1, 1, (300, 5)), jnp.float32)
    fit = lambda x: np.asarray(fit_laplace(  # noqa: E731
        x, jnp.ones(300), jnp.ones((300, 2)), jnp.zeros((6, 2)), key, 50,
        prior_precision=1.0).samples)
    before, after = fit(phi), fit(phi * (1.0 + 1e-6))
    assert np.corrcoef(before.ravel(), after.ravel())[0, 1] > 0.999
    np.testing.assert_allclose(after, before, atol=1e-3)


def test_mixture_moments_equal_empirical_moments_of_samples():
    key = jax.random.PRNGKey(0)
    means = jax.random.normal(key, (10, 3, 2))
    var = jnp.full((3, 2), 0.3)
    mu, sig2 = mixture_moments(means, var)
    # sample the mixture: pick a component uniformly, then its Gaussian
    n = 400_000
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    comp = jax.random.randint(k1, (n,), 0, 10)
    draws = means[comp] + jnp.sqrt(var) * jax.random.normal(k2, (n, 3, 2))
    np.testing.assert_allclose(np.asarray(mu), np.asarray(draws.mean(0)), atol=0.01)
    np.testing.assert_allclose(np.asarray(sig2), np.asarray(draws.var(0)), rtol=0.02)


def test_shift_distance():
    a = jnp.array([[0.0, 0.0], [1.0, 1.0]])
    b = jnp.array([[0.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(np.asarray(shift_distance(a, b)), [0.0, 2.5])


def test_ill_conditioned_precision_stays_finite():
    """10⁵ samples with large weights and a tiny λ: float32 Cholesky would give NaN."""
    rng = np.random.default_rng(6)
    phi = jnp.asarray(rng.standard_normal((100_000, 64)) * 3.0, jnp.float32)
    inv_var = jnp.full((100_000, 4), 50.0)
    post = fit_laplace(phi, jnp.ones(100_000), inv_var, jnp.zeros((65, 4)),
                       jax.random.PRNGKey(0), prior_precision=1e-4)
    assert np.isfinite(np.asarray(post.samples)).all()
    _, v = predictive(post, phi[:10])
    assert np.isfinite(np.asarray(v)).all() and (np.asarray(v) > 0).all()
