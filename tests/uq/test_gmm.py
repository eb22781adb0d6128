"""EM for Gaussian mixtures in JAX (DACER's entropy estimate) against known mixtures and closed
forms."""

import itertools
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.uq.gmm import (
    GaussianMixture,
    _m_step,
    batched_entropy,
    fit_gmm,
    gmm_entropy,
    gmm_log_prob,
)

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[-3.0, 0.0], [3.0, 0.5], [0.0, 4.0]])
COVS = np.array([[[0.5, 0.2], [0.2, 0.4]],
                 [[0.3, -0.1], [-0.1, 0.6]],
                 [[0.8, 0.0], [0.0, 0.2]]])


# one compiled batched fit shared by the vmap tests: 4 states × 200 samples × 3-D actions
_fit_states = jax.jit(jax.vmap(partial(fit_gmm, num_components=3, iterations=30)))


def _sample_mixture(n, seed=0):
    rng = np.random.default_rng(seed)
    comp = rng.choice(3, size=n, p=WEIGHTS)
    chol = np.linalg.cholesky(COVS)
    x = MEANS[comp] + np.einsum("nij,nj->ni", chol[comp], rng.standard_normal((n, 2)))
    return jnp.asarray(x, jnp.float32)


def _gaussian_entropy(cov):
    return 0.5 * np.linalg.slogdet(2 * np.pi * np.e * np.asarray(cov, np.float64))[1]


def test_em_log_likelihood_never_decreases():
    # no k-means refinement: EM starts from raw k-means++ seeds and has real work to do
    x = _sample_mixture(600, seed=1)
    gmm = fit_gmm(x, jax.random.PRNGKey(3), iterations=40, kmeans_iterations=0)
    ll = np.asarray(gmm.log_likelihoods)
    assert ll.shape == (40,) and np.all(np.isfinite(ll))
    assert np.all(np.diff(ll) >= -1e-5 * np.abs(ll[1:])), np.diff(ll).min()
    assert ll[-1] > ll[0] + 1e-3
    # the history is the mean log-likelihood; the fitted mixture is at least as good
    assert float(jnp.mean(gmm_log_prob(gmm, x))) >= ll[-1] - 1e-5 * abs(ll[-1])


def test_recovers_a_known_mixture():
    gmm = fit_gmm(_sample_mixture(3000), jax.random.PRNGKey(0))
    means = np.asarray(gmm.means)
    # match fitted components to the truth by the permutation with the smallest mean error
    perm = min(itertools.permutations(range(3)),
               key=lambda p: np.sum((means[list(p)] - MEANS) ** 2))
    perm = list(perm)
    np.testing.assert_allclose(np.asarray(gmm.weights)[perm], WEIGHTS, atol=0.05)
    np.testing.assert_allclose(means[perm], MEANS, atol=0.1)
    np.testing.assert_allclose(np.asarray(gmm.covariances)[perm], COVS, atol=0.1)
    np.testing.assert_allclose(float(jnp.sum(gmm.weights)), 1.0, rtol=1e-6)


def test_log_prob_and_entropy_match_closed_forms():
    """A hand-built mixture: log p(x) against a direct NumPy evaluation, and the entropy
    estimate against the formula of DACER's `estimate_entropy` written out in NumPy."""
    gmm = GaussianMixture(weights=jnp.asarray(WEIGHTS, jnp.float32),
                          means=jnp.asarray(MEANS, jnp.float32),
                          covariances=jnp.asarray(COVS, jnp.float32))
    x = np.random.default_rng(2).normal(0.0, 3.0, (50, 2))
    dens = np.zeros(50)
    for w, m, c in zip(WEIGHTS, MEANS, COVS, strict=True):
        diff = x - m
        maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(c), diff)
        dens += w * np.exp(-0.5 * maha) / np.sqrt(np.linalg.det(2 * np.pi * c))
    np.testing.assert_allclose(np.asarray(gmm_log_prob(gmm, jnp.asarray(x, jnp.float32))),
                               np.log(dens), rtol=1e-5, atol=1e-5)
    per_component = [0.5 * 2 * (1 + np.log(2 * np.pi)) + 0.5 * np.linalg.slogdet(c)[1]
                     for c in COVS]
    expected = -np.sum(WEIGHTS * np.log(WEIGHTS)) + np.sum(WEIGHTS * np.array(per_component))
    np.testing.assert_allclose(float(gmm_entropy(gmm)), expected, rtol=1e-5)


def test_entropy_of_a_gaussian_and_of_a_wider_one():
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.multivariate_normal([1.0, -2.0], cov, 3000), jnp.float32)
    key = jax.random.PRNGKey(0)
    truth = _gaussian_entropy(cov)
    # one component: the entropy of the sample covariance, close to the true one
    single = fit_gmm(x, key, num_components=1)
    sample_cov = np.cov(np.asarray(x, np.float64).T, bias=True)
    np.testing.assert_allclose(float(gmm_entropy(single)), _gaussian_entropy(sample_cov),
                               atol=1e-4)
    assert abs(float(gmm_entropy(single)) - truth) < 0.1
    # three components split the Gaussian: the estimate is an upper bound, off by the
    # overlap H(Z | X) ≤ log 3
    three = float(gmm_entropy(fit_gmm(x, key)))
    assert truth - 0.1 < three < truth + math.log(3)
    # scaling the data by 2 scales every fitted covariance by 4 (the fit is scale-equivariant
    # up to reg_covar): the estimate grows by exactly d log 2
    wider = float(gmm_entropy(fit_gmm(2.0 * x, key)))
    np.testing.assert_allclose(wider - three, 2 * math.log(2.0), atol=1e-3)


def test_jit_vmap_matches_separate_fits():
    rng = np.random.default_rng(5)
    # states with different action distributions: 200 samples of a 3-D action each
    samples = np.stack([rng.normal(rng.normal(size=3), rng.uniform(0.1, 1.0, 3), (200, 3))
                        for _ in range(4)])
    samples[1, :80] += 2.0  # one clearly multi-modal state
    samples = jnp.asarray(samples, jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(7), 4)
    batched = _fit_states(samples, keys)
    for i in range(4):
        single = fit_gmm(samples[i], keys[i], num_components=3, iterations=30)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), rtol=1e-4, atol=1e-5)
    # the convenience splits the key per state in the same way
    ent = batched_entropy(samples, jax.random.PRNGKey(7), iterations=30)
    assert ent.shape == (4,)
    np.testing.assert_allclose(np.asarray(ent), np.asarray(gmm_entropy(batched)), rtol=1e-5)


def test_degenerate_samples_stay_finite():
    key = jax.random.PRNGKey(0)
    samples = jnp.stack([
        jnp.full((200, 3), 0.3),  # all samples identical
        jnp.tile(jnp.asarray([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]]), (100, 1)),  # 2 points
        jnp.zeros((200, 3)).at[:, 0].set(jnp.linspace(-100.0, 100.0, 200)),  # on a line
        # actions clipped to [-1, 1]: many samples exactly on the box's faces and corners
        jnp.clip(2.0 * jax.random.normal(key, (200, 3)), -1.0, 1.0),
    ])
    gmms = _fit_states(samples, jax.random.split(key, 4))
    for leaf in jax.tree.leaves(gmms):
        assert np.all(np.isfinite(np.asarray(leaf)))
    ent = np.asarray(gmm_entropy(gmms))
    assert np.all(np.isfinite(ent))
    # point masses: the entropy is that of reg_covar·I components, far below any real spread
    assert ent[0] < 0.5 * 3 * np.log(2 * np.pi * np.e * 1e-5)
    logp = jax.vmap(gmm_log_prob)(gmms, samples)
    assert np.all(np.isfinite(np.asarray(logp)))
    # an M-step where one component owns no point at all keeps finite parameters
    x = samples[1]
    log_resp = jnp.log(jnp.stack([jnp.ones(200), jnp.zeros(200)], axis=1))
    weights, means, covs = jax.jit(_m_step)(x, log_resp, 1e-6)
    for leaf in (weights, means, covs):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert float(weights[1]) < 1e-6 and float(jnp.log(weights[1])) > -jnp.inf
