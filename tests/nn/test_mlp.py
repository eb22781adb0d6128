"""The MLP's orthogonal initialisation (the SAC-family critics' and actors')."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.critics.networks import QEnsemble
from dualrl.nn.mlp import orthogonal_init


@pytest.mark.parametrize("shape", [(14, 64), (64, 64), (64, 1), (3, 4, 5)])
def test_orthogonal_init_has_orthonormal_rows_or_columns_times_the_scale(shape):
    w = np.asarray(orthogonal_init(1.5)(jax.random.PRNGKey(0), shape)).reshape(-1, shape[-1])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 1.5**2 * np.eye(gram.shape[0]), atol=1e-4)


def test_orthogonal_init_is_haar_like_and_key_dependent():
    """Entries of a Haar-random n × n orthogonal matrix have mean 0 and variance 1/n."""
    draws = jax.vmap(lambda k: orthogonal_init()(k, (32, 32)))(
        jax.random.split(jax.random.PRNGKey(1), 200))
    first = np.asarray(draws[:, 0, 0])
    assert abs(first.mean()) < 3 * np.sqrt(1 / 32 / 200)
    assert np.var(first) == pytest.approx(1 / 32, rel=0.3)
    assert float(jnp.abs(draws[0] - draws[1]).max()) > 0.1


def test_a_vmapped_orthogonal_ensemble_initialises_under_jit():
    """10 members' layers initialised in one jitted program: with Flax's LAPACK-QR
    initialiser this very program never returned on 2 CPU cores (jax 0.10.2)."""
    net = QEnsemble(num_qs=10, hidden=(256, 256), orthogonal=True)
    params = jax.jit(net.init)(jax.random.PRNGKey(0), jnp.zeros((1, 11)), jnp.zeros((1, 3)))
    kernels = jax.tree.leaves(params)
    assert all(k.shape[0] == 10 for k in kernels)
    out = net.apply(params, jnp.ones((5, 11)), jnp.ones((5, 3)))
    assert out.shape == (10, 5) and float(out.std(axis=0).mean()) > 0.0
