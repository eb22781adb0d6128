"""MLP denoiser: features/head split, linear head, time dependence, jit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dualrl.nn.denoisers import MLPDenoiser


def test_mlp_denoiser_interface():
    d, batch = 48, 3
    model = MLPDenoiser(out_dim=d, hidden=(64, 64))
    kz, kt, kp, k1, k2 = jax.random.split(jax.random.PRNGKey(0), 5)
    z = jax.random.normal(kz, (batch, d))
    t = jax.random.uniform(kt, (batch,))
    params = jax.jit(model.init)(kp, z, t)
    assert sum(x.size for x in jax.tree.leaves(params)) > 0

    apply = jax.jit(model.apply)
    features = jax.jit(functools.partial(model.apply, method=model.features))
    head = jax.jit(functools.partial(model.apply, params, method=model.head))

    out = apply(params, z, t)
    assert out.shape == (batch, d)
    phi = features(params, z, t)
    assert phi.shape == (batch, 64)
    np.testing.assert_array_equal(head(phi), out)

    phi1 = jax.random.normal(k1, phi.shape)
    phi2 = jax.random.normal(k2, phi.shape)
    a, b = 0.7, -1.3
    h0 = head(jnp.zeros_like(phi1))
    np.testing.assert_allclose(
        head(a * phi1 + b * phi2) - h0,
        a * (head(phi1) - h0) + b * (head(phi2) - h0),
        atol=1e-4,
        rtol=1e-4,
    )

    out_other_t = apply(params, z, 1.0 - t)
    assert float(jnp.max(jnp.abs(out - out_other_t))) > 1e-4
