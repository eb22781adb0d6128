"""Temporal U-Net denoiser: shapes, features/head split, linear head, time dependence, jit.

CPU compile time dominates here, so parameters are drawn with NumPy on the abstract parameter
tree from ``jax.eval_shape(model.init, ...)`` (flax's own initialisers compile one XLA program
per kernel shape, ~20 s for this network), and every forward pass is jitted once per horizon.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dualrl.nn.unet import TemporalUNetDenoiser

TD = 6  # transition_dim
B = 2


def _numpy_params(model, z, t, seed=0):
    """Random parameters with the tree, shapes and dtypes that ``model.init`` would give."""
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), z, t)
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name == "kernel":
            fan_in = int(np.prod(leaf.shape[:-1]))
            x = rng.normal(size=leaf.shape) / np.sqrt(fan_in)
        elif name == "scale":
            x = 1.0 + 0.1 * rng.normal(size=leaf.shape)
        else:
            x = 0.1 * rng.normal(size=leaf.shape)
        return jnp.asarray(x, dtype=leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


@functools.cache
def _setup(horizon: int, **kw):
    """Model, parameters, inputs and a jitted apply.

    The parameters do not depend on the horizon (convs, GroupNorm and Dense layers act per
    channel), so the default configuration draws them once (at H = 8) and reuses them for every
    horizon: applying an H = 4 / 12 / 16 model with them also checks that property.
    """
    model = TemporalUNetDenoiser(out_dim=horizon * TD, horizon=horizon, transition_dim=TD, **kw)
    kz, kt = jax.random.split(jax.random.PRNGKey(horizon))
    z = jax.random.normal(kz, (B, horizon * TD))
    t = jax.random.uniform(kt, (B,))
    params = _setup(8)[1] if horizon != 8 and not kw else _numpy_params(model, z, t)
    return model, params, z, t, jax.jit(model.apply)


def _features_and_head(module, z, t):
    phi = module.features(z, t)
    return phi, module.head(phi)


# H = 4 and 12 are not multiples of 2**3: exercises the internal pad-and-crop. Shapes are
# checked by abstract tracing (no compile); numbers are computed for H = 4 (padded) and 8.
@pytest.mark.parametrize("horizon", [4, 8, 12, 16])
def test_output_and_feature_shapes(horizon):
    model, params, z, t, _ = _setup(horizon)
    phi, out = jax.eval_shape(
        functools.partial(model.apply, method=_features_and_head), params, z, t
    )
    assert out.shape == (B, horizon * TD)
    assert phi.shape == (B, horizon, model.dim)


@pytest.mark.parametrize("horizon", [4, 8])
def test_output_is_finite(horizon):
    _, params, z, t, apply = _setup(horizon)
    out = apply(params, z, t)
    assert out.shape == (B, horizon * TD)
    assert bool(jnp.all(jnp.isfinite(out)))
    assert float(jnp.std(out)) > 1e-3


def test_param_count():
    n_params = sum(x.size for x in jax.tree.leaves(_setup(8)[1]))
    print(f"TemporalUNetDenoiser(H=8, transition_dim={TD}) params: {n_params}")
    # Diffuser's dim=32, mults (1,2,4,8) U-Net has a few million parameters.
    assert 1_000_000 < n_params < 10_000_000, n_params


def test_head_of_features_equals_call():
    model, params, z, t, apply = _setup(8)
    phi = jax.jit(functools.partial(model.apply, method=model.features))(params, z, t)
    out = jax.jit(functools.partial(model.apply, method=model.head))(params, phi)
    np.testing.assert_array_equal(out, apply(params, z, t))


def test_head_is_linear():
    model, params, _, _, _ = _setup(8)
    head = jax.jit(functools.partial(model.apply, params, method=model.head))
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    phi1 = jax.random.normal(k1, (B, 8, model.dim))
    phi2 = jax.random.normal(k2, (B, 8, model.dim))
    a, b = 0.7, -1.3
    h0 = head(jnp.zeros_like(phi1))
    lhs = head(a * phi1 + b * phi2) - h0
    rhs = a * (head(phi1) - h0) + b * (head(phi2) - h0)
    np.testing.assert_allclose(lhs, rhs, atol=1e-4, rtol=1e-4)


def test_output_depends_on_time():
    _, params, z, t, apply = _setup(8)
    out_a = apply(params, z, jnp.full((B,), 0.1, dtype=t.dtype))
    out_b = apply(params, z, jnp.full((B,), 0.9, dtype=t.dtype))
    assert float(jnp.max(jnp.abs(out_a - out_b))) > 1e-4


def test_small_config():
    model, params, z, t, _ = _setup(6, dim=8, dim_mults=(1, 2, 4), groups=4)
    assert jax.eval_shape(model.apply, params, z, t).shape == (B, 6 * TD)


def test_bad_config_raises():
    bad = TemporalUNetDenoiser(out_dim=10, horizon=4, transition_dim=TD)
    with pytest.raises(ValueError):
        jax.eval_shape(bad.init, jax.random.PRNGKey(0), jnp.zeros((1, 10)), jnp.zeros((1,)))
    bad = TemporalUNetDenoiser(out_dim=4 * TD, horizon=4, transition_dim=TD, dim=12)
    with pytest.raises(ValueError):
        jax.eval_shape(bad.init, jax.random.PRNGKey(0), jnp.zeros((1, 4 * TD)), jnp.zeros((1,)))
