"""Last-layer Laplace approximation of a weighted Gaussian likelihood (SPEC §6, Eq. 6).

Model: output_j = W_j · φ̃ with φ̃ = [φ; 1] (bias included), loss per sample
w_i · (y_ij − W_j φ̃_i)² / (2 σ_ij²). Its exact Hessian in W_j (the Gauss–Newton matrix, since
the model is linear in W) plus a Gaussian prior N(0, λ⁻¹ I) gives, per output dimension j,
    P_j = (1/T) Σ_i (w̄_i / σ_ij²) φ̃_i φ̃_iᵀ + λ I,      W_j ~ N(W_j^MAP, P_j⁻¹),
with w̄ the weights normalised to mean 1 and T a temperature. λ maximises the Laplace log
marginal likelihood over a grid (MAP held fixed, as in post-hoc Laplace). Everything is
jittable; the precision is accumulated over the data in fixed-size chunks with `lax.scan`.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp

DEFAULT_LOG10_GRID = jnp.linspace(-4.0, 4.0, 33)


@flax.struct.dataclass
class LaplacePosterior:
    w_map: jax.Array  # (F+1, K): last row is the bias
    chol: jax.Array  # (K, F+1, F+1): lower Cholesky factor of each precision P_j
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


def log_marginal_likelihood(h: jax.Array, w_map: jax.Array, log10_grid: jax.Array) -> jax.Array:
    """λ-dependent part of the Laplace evidence, summed over output dims, for each λ:
        Σ_j [ −½ λ ‖W_j‖² + (D/2) log λ − ½ log det(H_j + λ I) ]   (D = F+1)."""
    eig = jnp.linalg.eigvalsh(h)  # (K, D)
    eig = jnp.maximum(eig, 0.0)
    d = h.shape[-1]
    sq = jnp.sum(w_map**2, axis=0)  # (K,)

    def lml(log10_lam):
        lam = 10.0**log10_lam
        return jnp.sum(-0.5 * lam * sq + 0.5 * d * jnp.log(lam)
                       - 0.5 * jnp.sum(jnp.log(eig + lam), axis=-1))

    return jax.vmap(lml)(log10_grid)


def sample_weights(w_map: jax.Array, chol: jax.Array, key: jax.Array, m: int) -> jax.Array:
    """M draws W_j = W_j^MAP + L_j^{-T} ξ (covariance P_j⁻¹), shape (M, F+1, K)."""
    k_dims, d = chol.shape[0], chol.shape[-1]
    xi = jax.random.normal(key, (m, k_dims, d))
    # solve L_j^T x = ξ for each j and sample
    x = jax.vmap(lambda l, e: jax.scipy.linalg.solve_triangular(l.T, e.T, lower=False).T,
                 in_axes=(0, 1), out_axes=1)(chol, xi)  # (M, K, D)
    return w_map[None] + jnp.swapaxes(x, 1, 2)


def fit_laplace(phi: jax.Array, weights: jax.Array, inv_var: jax.Array, w_map: jax.Array,
                key: jax.Array, num_samples: int = 10, temperature: float = 1.0,
                prior_precision: float | None = None,
                log10_grid: jax.Array = DEFAULT_LOG10_GRID) -> LaplacePosterior:
    """Fit the posterior around `w_map` (F+1, K); λ by marginal likelihood unless given."""
    h = gauss_newton_precision(phi, weights, inv_var, temperature)
    evidence = log_marginal_likelihood(h, w_map, log10_grid)
    if prior_precision is None:
        lam = 10.0 ** log10_grid[jnp.argmax(evidence)]
    else:
        lam = jnp.asarray(prior_precision, h.dtype)
    precision = h + lam * jnp.eye(h.shape[-1])[None]
    chol = jnp.linalg.cholesky(precision)
    samples = sample_weights(w_map, chol, key, num_samples)
    return LaplacePosterior(w_map=w_map, chol=chol, prior_precision=lam,
                            log_evidence=evidence, samples=samples)


def predictive(post: LaplacePosterior, phi: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Closed-form predictive mean φ̃ W^MAP and epistemic variance φ̃ᵀ P_j⁻¹ φ̃, (B, K) each."""
    phi_t = with_bias(phi)
    mean = phi_t @ post.w_map
    # ‖L_j⁻¹ φ̃‖² = φ̃ᵀ (L Lᵀ)⁻¹ φ̃
    v = jax.vmap(lambda l: jax.scipy.linalg.solve_triangular(l, phi_t.T, lower=True))(post.chol)
    return mean, jnp.sum(v**2, axis=1).T


def sampled_outputs(post: LaplacePosterior, phi: jax.Array) -> jax.Array:
    """Outputs of the M kept weight sets: (M, B, K) — one batched matmul."""
    return jnp.einsum("bf,mfk->mbk", with_bias(phi), post.samples)
