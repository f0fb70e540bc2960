"""jit, vmap and grad: traced rates without retracing, exact gradients, 1-byte residuals."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import nonzero_input
from flax import nnx

from dropblock_jax import drop_block
from dropblock_jax.linen import DropBlock as LinenDropBlock
from dropblock_jax.nnx import DropBlock as NnxDropBlock

KEY = jax.random.key(0)


def test_traced_rate_does_not_retrace():
    traces = []

    @jax.jit
    def step(key, x, rate):
        traces.append(1)
        return drop_block(key, x, rate, 5, max_rate=0.3)

    x = nonzero_input((4, 16, 16, 8))
    outs = [step(KEY, x, jnp.float32(r)) for r in (0.0, 0.05, 0.1, 0.3, 1.0)]
    assert len(traces) == 1
    fractions = [float((o == 0).mean()) for o in outs]
    assert fractions[0] == 0.0
    assert 0 < fractions[1] < fractions[2] < fractions[3] < 1
    assert bool((outs[-1] == outs[3]).all())  # a traced rate above max_rate is clipped to it


def test_traced_rate_matches_concrete_rate():
    # Same key, same max_rate: the traced call draws exactly what the eager call draws.
    x = nonzero_input((2, 12, 12, 4))
    eager = drop_block(KEY, x, 0.2, 3, max_rate=0.25)
    traced = jax.jit(lambda r: drop_block(KEY, x, r, 3, max_rate=0.25))(jnp.float32(0.2))
    assert bool((eager == traced).all())


def test_rate_above_max_rate_is_clipped():
    x = nonzero_input((2, 12, 12, 4))
    f = jax.jit(lambda r: drop_block(KEY, x, r, 3, max_rate=0.1))
    assert bool((f(jnp.float32(0.5)) == f(jnp.float32(0.1))).all())


def test_vmap_over_keys_gives_independent_masks():
    x = nonzero_input((2, 10, 10, 3))
    keys = jax.random.split(KEY, 4)
    ys = jax.vmap(lambda k: drop_block(k, x, 0.3, 3))(keys)
    assert ys.shape == (4, *x.shape)
    assert bool((ys[0] == drop_block(keys[0], x, 0.3, 3)).all())
    assert len({np.asarray(y == 0).tobytes() for y in ys}) == 4


def test_gradient_is_keep_times_scale():
    x = nonzero_input((2, 10, 10, 3))
    g = nonzero_input((2, 10, 10, 3), seed=1)
    y, vjp = jax.vjp(lambda v: drop_block(KEY, v, 0.3, 3), x)
    (grad,) = vjp(g)
    keep = y != 0
    scale = x.size / keep.sum()
    np.testing.assert_allclose(np.asarray(grad), np.where(keep, g * scale, 0.0), rtol=1e-6)
    assert bool((jax.grad(lambda v: drop_block(KEY, v, 0.3, 3).sum())(x) == jnp.where(keep, scale, 0)).all())


def test_forward_mode_is_keep_times_scale():
    x = nonzero_input((2, 10, 10, 3))
    t = nonzero_input((2, 10, 10, 3), seed=1)
    y, tangent = jax.jvp(lambda v: drop_block(KEY, v, 0.3, 3), (x,), (t,))
    keep = y != 0
    scale = x.size / keep.sum()
    np.testing.assert_allclose(np.asarray(tangent), np.where(keep, t * scale, 0.0), rtol=1e-6)
    jacobian_sum = jax.jacfwd(lambda v: drop_block(KEY, v, 0.3, 3).sum())(x)
    np.testing.assert_allclose(np.asarray(jacobian_sum), np.where(keep, scale, 0.0), rtol=1e-6)


def test_backward_keeps_at_most_one_byte_per_element():
    x = jnp.ones((4, 28, 28, 32))
    _, vjp = jax.vjp(lambda v: drop_block(KEY, v, 0.1, 7), x)
    residual_bytes = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(vjp) if hasattr(leaf, "dtype"))
    assert residual_bytes <= math.prod(x.shape) + 64


def test_grad_under_jit_with_traced_rate():
    x = nonzero_input((2, 8, 8, 2))
    f = jax.jit(jax.grad(lambda v, r: drop_block(KEY, v, r, 3, max_rate=0.5).sum()))
    grad = f(x, jnp.float32(0.3))
    assert bool(jnp.isfinite(grad).all())
    assert bool((grad == 0).any())


def test_symbolic_shapes_export_at_rate_zero_and_raise_our_error_in_training_mode():
    (batch,) = jax.export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((batch, 8, 8, 3), jnp.float32)
    exported = jax.export.export(jax.jit(lambda x: drop_block(KEY, x, 0.0, 3)))(spec)
    assert exported.out_avals[0].shape == spec.shape
    layer = NnxDropBlock(0.1, 3, rngs=nnx.Rngs(0))
    module = LinenDropBlock(0.1, 3)
    training_calls = {
        "functional": lambda x: drop_block(KEY, x, 0.1, 3),
        "nnx": lambda x: layer(x),  # checked before a key is drawn (Flax's own error would come first)
        "linen": lambda x: module.apply({}, x, deterministic=False, rngs={"dropout": KEY}),
    }
    for call in training_calls.values():
        with pytest.raises(ValueError, match="training mode needs a static input shape"):
            jax.export.export(jax.jit(call))(spec)
