"""Gaussian mixtures fitted by EM in JAX: batched, jittable, no host callbacks.

Why: DACER (Wang et al. 2024) regulates the entropy of a diffusion policy, whose density has no
closed form, by fitting a 3-component full-covariance Gaussian mixture to ~200 actions per state
and taking a closed-form entropy estimate of the mixture. Its reference code fits with sklearn
behind a host callback, one state at a time. Here the fit is a fixed number of EM iterations in
`lax.scan` (static shapes), so it can be jitted and vmapped over states on the accelerator.
Knows nothing of RL: samples in, mixture and entropy estimate out.
"""

from __future__ import annotations

import math
from functools import partial

import flax
import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp, xlogy

LOG_2PI = math.log(2.0 * math.pi)


@flax.struct.dataclass
class GaussianMixture:
    weights: jax.Array  # (K,) positive, sum to 1
    means: jax.Array  # (K, d)
    covariances: jax.Array  # (K, d, d) full, reg_covar already on the diagonal
    # (iterations,) mean log p(x) under the parameters entering each EM iteration (the first
    # entry is the initialisation's, the returned parameters' own is not included)
    log_likelihoods: jax.Array | None = None


def _sq_dist(x: jax.Array, centres: jax.Array) -> jax.Array:
    """(N, d), (K, d) -> (N, K) squared distances (direct differences: no cancellation)."""
    return jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)


def _kmeans_plus_plus(x: jax.Array, key: jax.Array, k: int) -> jax.Array:
    """Greedy k-means++ seeding (sklearn's: 2 + ⌊ln k⌋ D²-sampled candidates per centre, the
    one lowering the potential most is kept). If every point is already a centre (duplicated
    data) the D² law is undefined and candidates are drawn uniformly instead."""
    trials = 2 + int(math.log(k))
    key_first, key_rest = jax.random.split(key)
    first = x[jax.random.randint(key_first, (), 0, x.shape[0])]
    d2 = jnp.sum((x - first) ** 2, axis=-1)
    centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)

    def add(carry, inputs):
        centres, d2 = carry
        i, key = inputs
        logits = jnp.where(jnp.sum(d2) > 0, jnp.log(d2), 0.0)
        cand = jax.random.categorical(key, logits, shape=(trials,))
        cand_d2 = jnp.minimum(d2[None], _sq_dist(x, x[cand]).T)  # (trials, N)
        best = jnp.argmin(jnp.sum(cand_d2, axis=-1))
        return (centres.at[i].set(x[cand[best]]), cand_d2[best]), None

    steps = (jnp.arange(1, k), jax.random.split(key_rest, k - 1))
    (centres, _), _ = jax.lax.scan(add, (centres, d2), steps)
    return centres


def _lloyd(x: jax.Array, centres: jax.Array, iterations: int) -> tuple[jax.Array, jax.Array]:
    """Fixed number of k-means steps; an empty cluster keeps its centre. Returns the centres
    and the final labels (N,)."""
    k = centres.shape[0]

    def step(centres, _):
        onehot = jax.nn.one_hot(jnp.argmin(_sq_dist(x, centres), axis=-1), k, dtype=x.dtype)
        counts = jnp.sum(onehot, axis=0)
        new = (onehot.T @ x) / jnp.maximum(counts, 1.0)[:, None]
        return jnp.where(counts[:, None] > 0, new, centres), None

    centres, _ = jax.lax.scan(step, centres, None, length=iterations)
    return centres, jnp.argmin(_sq_dist(x, centres), axis=-1)


def _positive_definite(covs: jax.Array) -> jax.Array:
    """Covariances (..., d, d) whose float32 Cholesky succeeds. Rounding can leave a
    rank-deficient covariance slightly indefinite when the data's scale dwarfs reg_covar; such
    a matrix gets 1e-5 × its largest variance added to the diagonal (others are unchanged)."""
    ok = jnp.all(jnp.isfinite(jnp.linalg.cholesky(covs)), axis=(-2, -1))
    jitter = 1e-5 * jnp.max(jnp.diagonal(covs, axis1=-2, axis2=-1), axis=-1)
    eye = jnp.eye(covs.shape[-1], dtype=covs.dtype)
    return jnp.where(ok[..., None, None], covs, covs + jitter[..., None, None] * eye)


def _component_log_prob(means: jax.Array, covs: jax.Array, x: jax.Array) -> jax.Array:
    """log N(x_n | μ_k, Σ_k), shape (N, K), through the Cholesky factor Σ_k = L_k L_kᵀ:
    the Mahalanobis term is |L_k⁻¹ (x − μ_k)|² and ½ log det Σ_k = Σ_i log L_k,ii."""
    d = x.shape[-1]
    chol = jnp.linalg.cholesky(covs)  # (K, d, d)
    diff = jnp.swapaxes(x[None] - means[:, None], -1, -2)  # (K, d, N)
    z = solve_triangular(chol, diff, lower=True)
    maha = jnp.sum(z**2, axis=-2)  # (K, N)
    half_logdet = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return (-0.5 * (maha + d * LOG_2PI) - half_logdet[:, None]).T


def _m_step(x: jax.Array, log_resp: jax.Array, reg_covar: float | jax.Array
            ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Weights, means and full covariances from responsibilities (N, K). As in sklearn the
    effective counts get 10·eps, so a component that owns no point keeps finite parameters
    (mean 0, covariance reg_covar·I, weight ~eps/N) instead of dividing 0 by 0."""
    resp = jnp.exp(log_resp)
    counts = jnp.sum(resp, axis=0) + 10.0 * jnp.finfo(x.dtype).eps  # (K,)
    means = (resp.T @ x) / counts[:, None]
    diff = x[None] - means[:, None]  # (K, N, d)
    covs = jnp.einsum("nk,kni,knj->kij", resp, diff, diff) / counts[:, None, None]
    covs = 0.5 * (covs + jnp.swapaxes(covs, -1, -2))
    covs = covs + reg_covar * jnp.eye(x.shape[-1], dtype=x.dtype)
    return counts / jnp.sum(counts), means, _positive_definite(covs)


@partial(jax.jit, static_argnames=("num_components", "iterations", "kmeans_iterations"))
def fit_gmm(x: jax.Array, key: jax.Array, num_components: int = 3, iterations: int = 50,
            reg_covar: float = 1e-6, kmeans_iterations: int = 10) -> GaussianMixture:
    """Full-covariance Gaussian mixture fitted to x (N, d) by `iterations` EM steps.

    A fixed iteration count (no tolerance test, unlike sklearn's tol=1e-3 / max_iter=100)
    keeps the shapes static, so the fit jits and vmaps over states (vmap over x and key).
    Responsibilities are normalised in log space (logsumexp); densities go through Cholesky.

    Initialisation, deterministic given `key`: greedy k-means++ seeds refined by
    `kmeans_iterations` Lloyd steps give the means (sklearn's default init is likewise
    k-means); every component starts with the pooled within-cluster covariance of that
    clustering (+ reg_covar) and weight 1/K. sklearn instead takes each cluster's own
    covariance and share, which is singular for a cluster of 0 or 1 points (duplicated
    samples, clipped actions); inside jit there is no re-seeding, so the shared, better
    conditioned start is used. The data are centred first (EM is translation-equivariant),
    which keeps float32 accurate for data far from the origin.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    n, d = x.shape
    offset = jnp.mean(x, axis=0)
    xc = x - offset
    eye = jnp.eye(d, dtype=x.dtype)

    centres = _kmeans_plus_plus(xc, key, num_components)
    centres, labels = _lloyd(xc, centres, kmeans_iterations)
    within = xc - centres[labels]
    pooled = _positive_definite(within.T @ within / n + reg_covar * eye)
    init = (jnp.full((num_components,), 1.0 / num_components, x.dtype), centres,
            jnp.broadcast_to(pooled, (num_components, d, d)))

    def em_step(params, _):
        weights, means, covs = params
        log_joint = jnp.log(weights) + _component_log_prob(means, covs, xc)  # (N, K)
        log_norm = logsumexp(log_joint, axis=-1, keepdims=True)
        return _m_step(xc, log_joint - log_norm, reg_covar), jnp.mean(log_norm)

    (weights, means, covs), history = jax.lax.scan(em_step, init, None, length=iterations)
    return GaussianMixture(weights=weights, means=means + offset, covariances=covs,
                           log_likelihoods=history)


@jax.jit
def gmm_log_prob(gmm: GaussianMixture, x: jax.Array) -> jax.Array:
    """log p(x_n) under one mixture, shape (N,) for x (N, d) (vmap for batches of mixtures)."""
    log_joint = jnp.log(gmm.weights) + _component_log_prob(gmm.means, gmm.covariances, x)
    return logsumexp(log_joint, axis=-1)


@jax.jit
def gmm_entropy(gmm: GaussianMixture) -> jax.Array:
    """DACER's closed-form entropy estimate of a mixture (leading batch dims allowed):

        Ĥ = Σ_k w_k · ½ log det(2πe Σ_k) − Σ_k w_k log w_k,

    i.e. H(X | Z) + H(Z) for the component label Z, an upper bound of the mixture entropy
    H(X) (the gap is H(Z | X), the components' overlap, at most log K): the mixture entropy
    itself has no closed form. As in the reference `estimate_entropy` in
    relax/algorithm/dacer.py (github.com/happy-yan/DACER-Diffusion-with-Online-RL), which
    writes ½ d (1 + log 2π) + ½ slogdet Σ_k per component and averages Ĥ over the states.
    """
    d = gmm.means.shape[-1]
    chol = jnp.linalg.cholesky(gmm.covariances)
    half_logdet = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    component = 0.5 * d * (1.0 + LOG_2PI) + half_logdet
    return jnp.sum(gmm.weights * component, axis=-1) - jnp.sum(xlogy(gmm.weights, gmm.weights),
                                                                axis=-1)


@partial(jax.jit, static_argnames=("num_components", "iterations"))
def batched_entropy(samples: jax.Array, key: jax.Array, num_components: int = 3,
                    iterations: int = 50, reg_covar: float = 1e-6) -> jax.Array:
    """Per-state entropy estimates (B,) from samples (B, N, d): one mixture per state, each
    with its own key split from `key`. DACER's temperature loss uses their mean."""
    keys = jax.random.split(key, samples.shape[0])
    fit = partial(fit_gmm, num_components=num_components, iterations=iterations,
                  reg_covar=reg_covar)
    return gmm_entropy(jax.vmap(fit)(samples, keys))
