"""Last-layer Laplace approximation of a weighted Gaussian likelihood (SPEC §6, Eq. 6).

Model: output_j = W_j · φ̃ with φ̃ = [φ; 1] (bias included), loss per sample
w_i · (y_ij − W_j φ̃_i)² / (2 σ_ij²). Its exact Hessian in W_j (the Gauss–Newton matrix, since
the model is linear in W) plus a Gaussian prior N(0, λ⁻¹ I) gives, per output dimension j,
    P_j = (1/T) Σ_i (w̄_i / σ_ij²) φ̃_i φ̃_iᵀ + λ I,      W_j ~ N(W_j^MAP, P_j⁻¹),
with w̄ the weights normalised to mean 1 and T a temperature. λ maximises the Laplace log
marginal likelihood over a grid (MAP held fixed, as in post-hoc Laplace). Everything is
jittable; the precision is accumulated over the data in fixed-size chunks with `lax.scan`.

Numerics: with 10⁵ samples the data term's eigenvalues reach ~10⁶ while λ may be 10⁻⁴, a
condition number float32 Cholesky cannot take (it returns NaN). The posterior is therefore
kept as the eigendecomposition H_j = Q_j diag(e_j) Q_jᵀ (e clipped at 0), so that
P_j⁻¹ = Q_j diag(1/(e_j + λ)) Q_jᵀ and a draw is P_j^{-1/2} ξ with the SYMMETRIC root
Q_j diag((e_j + λ)^{-1/2}) Q_jᵀ: exact and stable for any λ > 0. The symmetric root, not
Q_j diag(...) ξ alone: eigenvectors are defined only up to sign (and rotation inside
near-equal eigenvalues), so the plain form turned a 1e-6 change of H into an unrelated draw
(same law, correlation ~0 with the old one); the symmetric root is a continuous function of
H, so the same key and nearly the same data give nearly the same sub-policies.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp

DEFAULT_LOG10_GRID = jnp.linspace(-4.0, 4.0, 33)


@flax.struct.dataclass
class LaplacePosterior:
    w_map: jax.Array  # (F+1, K): last row is the bias
    eigvecs: jax.Array  # (K, F+1, F+1): Q_j of the data term H_j = Q_j diag(e_j) Q_jᵀ
    eigvals: jax.Array  # (K, F+1): e_j ≥ 0
    prior_precision: jax.Array  # () chosen λ
    log_evidence: jax.Array  # (G,) log marginal likelihood over the λ grid
    samples: jax.Array  # (M, F+1, K): weight sets drawn at fit time (the sub-policies)


def with_bias(phi: jax.Array) -> jax.Array:
    return jnp.concatenate([phi, jnp.ones(phi.shape[:-1] + (1,), phi.dtype)], axis=-1)


def gauss_newton_precision(phi: jax.Array, weights: jax.Array, inv_var: jax.Array,
                           temperature: float = 1.0, chunk: int = 4096) -> jax.Array:
    """H_j = (1/T) Σ_i (w̄_i / σ_ij²) φ̃_i φ̃_iᵀ, shape (K, F+1, F+1); w̄ = w / mean(w).

    phi (N, F), weights (N,), inv_var (N, K). N is padded to a multiple of `chunk` with
    zero-weight rows so memory stays O(chunk · F²) for 100k samples.
    """
    n = phi.shape[0]
    w_bar = weights / jnp.mean(weights)
    pad = (-n) % chunk if n > chunk else 0
    size = chunk if n > chunk else n
    phi_t = jnp.pad(with_bias(phi), ((0, pad), (0, 0)))
    coef = jnp.pad(w_bar[:, None] * inv_var, ((0, pad), (0, 0)))  # (N, K)
    phi_t = phi_t.reshape(-1, size, phi_t.shape[-1])
    coef = coef.reshape(-1, size, coef.shape[-1])

    def add(acc, xs):
        p, c = xs
        return acc + jnp.einsum("nk,nf,ng->kfg", c, p, p), None

    d = phi_t.shape[-1]
    h0 = jnp.zeros((coef.shape[-1], d, d), phi.dtype)
    h, _ = jax.lax.scan(add, h0, (phi_t, coef))
    return h / temperature


def log_marginal_likelihood(eigvals: jax.Array, w_map: jax.Array,
                            log10_grid: jax.Array) -> jax.Array:
    """λ-dependent part of the Laplace evidence, summed over output dims, for each λ:
        Σ_j [ −½ λ ‖W_j‖² + (D/2) log λ − ½ log det(H_j + λ I) ]   (D = F+1),
    from the eigenvalues (K, D) of the data terms H_j."""
    d = eigvals.shape[-1]
    sq = jnp.sum(w_map**2, axis=0)  # (K,)

    def lml(log10_lam):
        lam = 10.0**log10_lam
        return jnp.sum(-0.5 * lam * sq + 0.5 * d * jnp.log(lam)
                       - 0.5 * jnp.sum(jnp.log(eigvals + lam), axis=-1))

    return jax.vmap(lml)(log10_grid)


def sample_weights(w_map: jax.Array, eigvecs: jax.Array, eigvals: jax.Array, lam,
                   key: jax.Array, m: int) -> jax.Array:
    """M draws W_j = W_j^MAP + Q_j diag((e_j + λ)^{-1/2}) Q_jᵀ ξ (covariance P_j⁻¹), (M, F+1, K):
    the symmetric root, invariant to the eigenvectors' signs and bases (module docstring)."""
    k_dims, d = eigvals.shape
    xi = jax.random.normal(key, (m, k_dims, d))
    rotated = jnp.einsum("kde,mkd->mke", eigvecs, xi)  # Q_jᵀ ξ
    scaled = rotated / jnp.sqrt(eigvals + lam)[None]  # (M, K, D)
    x = jnp.einsum("kde,mke->mkd", eigvecs, scaled)
    return w_map[None] + jnp.swapaxes(x, 1, 2)


def fit_laplace(phi: jax.Array, weights: jax.Array, inv_var: jax.Array, w_map: jax.Array,
                key: jax.Array, num_samples: int = 10, temperature: float = 1.0,
                prior_precision: float | None = None,
                log10_grid: jax.Array = DEFAULT_LOG10_GRID,
                data_scale: jax.Array | float = 1.0) -> LaplacePosterior:
    """Fit the posterior around `w_map` (F+1, K); λ by marginal likelihood unless given.

    `data_scale` multiplies the data term, e.g. (distinct data points) / (rows given) when
    the rows were drawn with replacement from a smaller buffer.
    """
    h = gauss_newton_precision(phi, weights, inv_var, temperature) * data_scale
    eigvals, eigvecs = jnp.linalg.eigh(h)
    eigvals = jnp.maximum(eigvals, 0.0)
    evidence = log_marginal_likelihood(eigvals, w_map, log10_grid)
    if prior_precision is None:
        lam = 10.0 ** log10_grid[jnp.argmax(evidence)]
    else:
        lam = jnp.asarray(prior_precision, h.dtype)
    samples = sample_weights(w_map, eigvecs, eigvals, lam, key, num_samples)
    return LaplacePosterior(w_map=w_map, eigvecs=eigvecs, eigvals=eigvals,
                            prior_precision=lam, log_evidence=evidence, samples=samples)


def precision_matrix(post: LaplacePosterior) -> jax.Array:
    """P_j = Q_j diag(e_j + λ) Q_jᵀ, (K, F+1, F+1) (for inspection and tests)."""
    return jnp.einsum("kde,ke,kfe->kdf", post.eigvecs, post.eigvals + post.prior_precision,
                      post.eigvecs)


def predictive(post: LaplacePosterior, phi: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Closed-form predictive mean φ̃ W^MAP and epistemic variance φ̃ᵀ P_j⁻¹ φ̃, (B, K) each."""
    phi_t = with_bias(phi)
    mean = phi_t @ post.w_map
    proj = jnp.einsum("bd,kde->kbe", phi_t, post.eigvecs)  # Q_jᵀ φ̃
    var = jnp.sum(proj**2 / (post.eigvals + post.prior_precision)[:, None, :], axis=-1)
    return mean, var.T


def sampled_outputs(post: LaplacePosterior, phi: jax.Array) -> jax.Array:
    """Outputs of the M kept weight sets: (M, B, K) — one batched matmul."""
    return jnp.einsum("bf,mfk->mbk", with_bias(phi), post.samples)
