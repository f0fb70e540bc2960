"""dropblock_jax.linen.DropBlock behaves like flax.linen.Dropout."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
from conftest import nonzero_input

from dropblock_jax import drop_block, linear_schedule
from dropblock_jax.linen import DropBlock

X = nonzero_input((2, 12, 12, 4))
KEY = jax.random.key(3)


def test_merge_param_semantics():
    with pytest.raises(ValueError, match="deterministic"):
        DropBlock(0.2, 3).apply({}, X, rngs={"dropout": KEY})
    with pytest.raises(ValueError, match="deterministic"):
        DropBlock(0.2, 3, deterministic=True).apply({}, X, deterministic=True)
    assert DropBlock(0.2, 3, deterministic=True).apply({}, X) is X
    assert DropBlock(0.2, 3).apply({}, X, deterministic=True) is X


def test_draws_from_make_rng_and_rng_override():
    layer = DropBlock(0.2, 3)
    a = layer.apply({}, X, deterministic=False, rngs={"dropout": KEY})
    b = layer.apply({}, X, deterministic=False, rngs={"dropout": KEY})
    assert bool((a == b).all())
    assert bool((a == 0).any())
    other = jax.random.key(9)
    c = layer.apply({}, X, deterministic=False, rng=other)
    assert bool((c == drop_block(other, X, 0.2, 3)).all())
    custom = DropBlock(0.2, 3, rng_collection="blocks")
    assert bool((custom.apply({}, X, deterministic=False, rngs={"blocks": KEY}) == 0).any())


def test_wrong_rank_raises_in_inference_and_at_rate_zero_too():
    with pytest.raises(ValueError, match="must be 4D"):
        DropBlock(0.1, (3, 3), deterministic=True).apply({}, jnp.ones((2, 16, 3)))
    with pytest.raises(ValueError, match="must be 4D"):
        DropBlock(0.1, (3, 3)).apply({}, jnp.ones((2, 16, 3)), deterministic=False, rate=0.0)
    with pytest.raises(ValueError, match=r"spatial_dims=2, so the input must be 4D"):
        DropBlock(0.1, 3, spatial_dims=2, deterministic=True).apply({}, jnp.ones((2, 16, 3)))


def test_validation():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DropBlock(1.5, 3)
    with pytest.raises(ValueError, match="block_size"):
        DropBlock(0.1, (3, 0))
    with pytest.raises(ValueError, match="block_size"):
        DropBlock(0.1, (3,), spatial_dims=2)


class Net(nn.Module):
    @nn.compact
    def __call__(self, x, rate, train: bool):
        x = nn.Conv(4, (3, 3))(x)
        return DropBlock(0.3, 3, deterministic=not train)(x, rate=rate)


def test_call_time_rate_at_the_configured_rate_in_float32():
    x = nonzero_input((2, 8, 8, 3))
    rate = linear_schedule(5000, 1000, 0.1)  # float32(0.1), above the Python float 0.1
    y = DropBlock(0.1, 3).apply({}, x, deterministic=False, rate=rate, rng=jax.random.key(0))
    assert y.shape == x.shape


def test_in_a_model_with_a_scheduled_rate_under_jit():
    model = Net()
    params = model.init(jax.random.key(0), X, 0.0, False)
    traces = []

    @jax.jit
    def step(params, step, key):
        traces.append(1)
        rate = linear_schedule(step, 100, 0.3)
        return jax.grad(lambda p: jnp.sum(model.apply(p, X, rate, True, rngs={"dropout": key}) ** 2))(params)

    for t in range(3):
        grads = step(params, jnp.int32(t * 50), jax.random.key(t))
    assert len(traces) == 1
    assert bool(jnp.isfinite(jax.tree.leaves(grads)[0]).all())
    conv_only = nn.Conv(4, (3, 3)).apply({"params": params["params"]["Conv_0"]}, X)
    assert bool((model.apply(params, X, 0.3, False) == conv_only).all()), "eval mode is the identity"


def test_deterministic_and_rng_collection_are_checked() -> None:
    x = jnp.ones((2, 8, 8, 3))
    with pytest.raises(ValueError, match="`rng_collection`"):
        DropBlock(0.1, 3, rng_collection=3)
    with pytest.raises(ValueError, match="`deterministic`"):
        DropBlock(0.1, 3).apply({}, x, deterministic="no")
