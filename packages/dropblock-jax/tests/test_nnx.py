"""dropblock_jax.nnx.DropBlock behaves like flax.nnx.Dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import nonzero_input
from flax import nnx

from dropblock_jax import drop_block, linear_schedule
from dropblock_jax._schedule_check import restore, save
from dropblock_jax.nnx import DropBlock

X = nonzero_input((2, 12, 12, 4))


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(4, 4, (3, 3), rngs=rngs)
        self.drop = DropBlock(0.3, 3, rngs=rngs)

    def __call__(self, x, rate=None):
        return self.drop(self.conv(x), rate=rate)


def test_train_eval_and_call_time_precedence():
    layer = DropBlock(0.3, 3, rngs=nnx.Rngs(dropout=0))
    assert bool((layer(X) == 0).any())
    layer.eval()
    assert layer(X) is X
    assert bool((layer(X, deterministic=False) == 0).any())
    layer.train()
    assert layer(X, deterministic=True) is X
    view = nnx.view(layer, deterministic=True)
    assert view(X) is X
    assert not layer.deterministic


def test_uses_the_forked_dropout_stream():
    layer = DropBlock(0.3, 3, rngs=nnx.Rngs(dropout=0))
    stream = nnx.Rngs(dropout=0)["dropout"].fork()
    assert bool((layer(X) == drop_block(stream(), X, 0.3, 3)).all())
    assert not bool((layer(X) == layer(X)).all()), "successive calls draw new masks"


def test_call_time_rngs_override():
    layer = DropBlock(0.3, 3, rngs=nnx.Rngs(dropout=0))
    key = jax.random.key(42)
    assert bool((layer(X, rngs=key) == drop_block(key, X, 0.3, 3)).all())
    assert bool((layer(X, rngs=nnx.Rngs(dropout=5)) == layer(X, rngs=nnx.Rngs(dropout=5))).all())
    bare = DropBlock(0.3, 3)
    with pytest.raises(ValueError, match="rngs"):
        bare(X)
    with pytest.raises(TypeError):
        DropBlock(0.3, 3, rngs=0)  # type: ignore[arg-type]


def test_wrong_rank_raises_in_inference_and_at_rate_zero_too():
    layer = DropBlock(0.1, 3, spatial_dims=2, rngs=nnx.Rngs(0))
    for kwargs in ({"deterministic": True}, {"deterministic": False, "rate": 0.0}):
        with pytest.raises(ValueError, match=r"spatial_dims=2, so the input must be 4D"):
            layer(jnp.ones((2, 16, 3)), **kwargs)


def test_validation_at_construction():
    for rate in (-0.1, 1.1, float("nan"), True):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            DropBlock(rate, 3)
    for block in (0, (3, -1), "3", (1, 2, 3, 4)):
        with pytest.raises(ValueError, match=r"block_size.*a tuple of 1, 2 or 3 positive ints"):
            DropBlock(0.1, block)
    for dims in (True, 2.0, "2"):
        with pytest.raises(ValueError, match="`spatial_dims`: expected 1, 2 or 3"):
            DropBlock(0.1, 3, spatial_dims=dims)
    assert DropBlock(0.1, 3, spatial_dims=np.int64(2)).block_size == (3, 3)
    nested = np.ones((2, 8, 8, 3), np.float32).tolist()  # array-likes are converted, as jnp functions do
    assert DropBlock(0.1, 3, rngs=nnx.Rngs(0))(nested).shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match="block_size"):
        DropBlock(0.1, (3,), spatial_dims=2)
    with pytest.raises(ValueError, match="4D"):
        DropBlock(0.1, 3, spatial_dims=2, rngs=nnx.Rngs(0))(jnp.ones((2, 8, 3)))
    with pytest.raises(TypeError):
        DropBlock(0.1, 3, rngs=nnx.Rngs(0))(jnp.ones((2, 8, 8, 3), dtype=jnp.int32))


def test_nnx_jit_advances_the_rng_and_grad_flows():
    model = Net(nnx.Rngs(params=0, dropout=1))
    count = model.drop.rngs.count[...]

    @nnx.jit
    def forward(model, x):
        return model(x)

    a, b = forward(model, X), forward(model, X)
    assert not bool((a == b).all())
    assert int(model.drop.rngs.count[...]) == int(count) + 2
    grads = nnx.grad(lambda m: jnp.sum(m(X) ** 2))(model)
    assert bool(jnp.isfinite(grads["conv"]["kernel"][...]).all())


def test_split_merge_is_pure_and_carries_the_rng_state():
    model = Net(nnx.Rngs(params=0, dropout=1))
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, x):
        module = nnx.merge(graphdef, state)
        return module(x), nnx.state(module)

    y1, state1 = forward(state, X)
    y2, _ = forward(state, X)
    y3, _ = forward(state1, X)
    assert bool((y1 == y2).all()), "the same state gives the same mask"
    assert not bool((y1 == y3).all()), "the returned state has advanced the stream"
    nnx.update(model, state1)
    assert bool((model(X) == y3).all())


def test_checkpoint_restores_the_rng_state():
    model = Net(nnx.Rngs(params=0, dropout=1))
    model(X)
    saved = save(model)
    expected = model(X)
    fresh = Net(nnx.Rngs(params=9, dropout=9))
    restore(fresh, saved)
    assert bool((fresh(X) == expected).all()), "a restored model continues the same mask sequence"


def test_scheduled_rate_does_not_recompile():
    model = Net(nnx.Rngs(params=0, dropout=1))
    traces = []

    @nnx.jit
    def step(model, x, step):
        traces.append(1)
        return model(x, rate=linear_schedule(step, 10, 0.3))

    fractions = [float((step(model, X, jnp.int32(t)) == 0).mean()) for t in (0, 5, 10, 20)]
    assert len(traces) == 1
    assert fractions[0] == 0.0
    assert 0 < fractions[1] < 1
    assert fractions[2] > 0


def test_call_time_rate_at_the_configured_rate_in_float32():
    # float32(0.1) is above the Python float 0.1: the schedule's own target must pass.
    layer = DropBlock(0.1, 3, rngs=nnx.Rngs(dropout=0))
    for rate in (linear_schedule(5000, 1000, 0.1), jnp.float32(0.1)):
        assert layer(X, rate=rate).shape == X.shape
    with pytest.raises(ValueError, match="at most"):
        layer(X, rate=float(jnp.nextafter(jnp.float32(0.1), jnp.float32(1))))


def test_call_time_rate_above_the_configured_rate_raises():
    layer = DropBlock(0.1, 3, rngs=nnx.Rngs(dropout=0))
    with pytest.raises(ValueError, match="at most"):
        layer(X, rate=0.5)
    assert layer(X, rate=0.0) is X


def test_view_info_describes_the_deterministic_view() -> None:
    model = nnx.Sequential(DropBlock(0.1, 3, rngs=nnx.Rngs(dropout=0)))
    assert "deterministic" in str(nnx.view_info(model))


def test_deterministic_and_rng_collection_are_checked() -> None:
    with pytest.raises(ValueError, match="`rng_collection`"):
        DropBlock(0.1, 3, rng_collection=3, rngs=nnx.Rngs(dropout=0))
    with pytest.raises(ValueError, match="`deterministic`"):
        DropBlock(0.1, 3, deterministic="no", rngs=nnx.Rngs(dropout=0))
    layer = DropBlock(0.1, 3, rngs=nnx.Rngs(dropout=0))
    with pytest.raises(ValueError, match="`deterministic`"):
        layer(jnp.ones((2, 8, 8, 3)), deterministic="no")


def test_a_traced_rate_on_a_layer_configured_off_is_the_identity() -> None:
    layer = DropBlock(0.0, 3, rngs=nnx.Rngs(dropout=0))
    x = jnp.ones((2, 8, 8, 3))
    assert (nnx.jit(lambda m, r: m(x, rate=r))(layer, jnp.float32(0.1)) == x).all()
