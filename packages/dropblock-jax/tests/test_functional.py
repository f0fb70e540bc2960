"""The pure function: parameters, shapes, dtypes, edge rates and the exact samplers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import nonzero_input, within_z

from dropblock_jax import _painting, _sampling, drop_block, functional
from dropblock_jax._layout import Layout

KEY = jax.random.key(0)


@pytest.mark.parametrize(
    ("shape", "data_format", "block"),
    [
        ((2, 20, 3), "channels_last", 5),
        ((2, 3, 20), "channels_first", (5,)),
        ((2, 14, 10, 3), "channels_last", (7, 3)),
        ((2, 3, 14, 10), "channels_first", 4),
        ((1, 6, 7, 8, 2), "channels_last", 3),
        ((1, 2, 6, 7, 8), "channels_first", (2, 3, 4)),
    ],
)
def test_every_zero_belongs_to_a_whole_dropped_block(shape, data_format, block):
    x = nonzero_input(shape)
    layout = Layout.of(shape, block, data_format, True)
    seeds = np.asarray(functional.sample_seeds(KEY, layout, jnp.float32(0.3), 0.3))
    y = np.asarray(drop_block(KEY, x, 0.3, block, data_format=data_format))
    expected = np.asarray(_painting.apply_seed_grid(x, seeds, layout, "batch"))
    assert np.array_equal(y, expected), "the layer's output is stage 2 of its own seeds"
    assert seeds.any()
    assert (y == 0).any()


def test_sparse_painting_equals_dense_dilation():
    rng = np.random.default_rng(3)
    for shape, data_format, block, per_channel in [
        ((3, 11, 9, 4), "channels_last", (4, 3), True),
        ((2, 4, 13), "channels_first", (6,), False),
        ((2, 3, 5, 6, 7), "channels_first", (2, 3, 2), True),
    ]:
        layout = Layout.of(shape, block, data_format, per_channel)
        seeds = rng.random(layout.grid_shape) < 0.05
        painted = _painting.paint_positions(jnp.asarray(np.flatnonzero(seeds).astype(np.int32)), layout)
        dilated = _painting.dilate_grid(jnp.asarray(seeds), layout)
        assert np.array_equal(np.asarray(painted), np.asarray(dilated))


def test_unused_sparse_slots_are_never_written():
    layout = Layout.of((1, 6, 6, 1), 2, "channels_last", True)
    unused = jnp.full((4,), layout.num_grid, dtype=jnp.int32)
    assert bool(_painting.paint_positions(unused, layout).all())


def _numpy_positions(key, gamma_value, num_grid, capacity):
    """The sparse sampler recomputed with exact int64 running sums from the same uniforms."""
    u = 1.0 - jax.random.uniform(key, (capacity,), dtype=jnp.float32)
    g = jnp.float32(gamma_value)
    gaps = np.asarray(jnp.floor(jnp.log(u) / jnp.log1p(-g))).astype(np.float64)
    ends = np.cumsum(np.minimum(gaps, num_grid).astype(np.int64) + 1)
    return np.where(ends <= num_grid, ends - 1, num_grid)


@pytest.mark.parametrize(
    ("gamma_value", "num_grid", "capacity"),
    [(0.01, 5000, 120), (0.3, 50, 40), (1e-9, 2**31 - 300, 12), (2e-3, 2**31 - 300, 50), (0.5, 7, 7)],
)
def test_sparse_positions_match_exact_int64_running_sums(gamma_value, num_grid, capacity):
    # The last cases make the int32 running sum wrap around; those slots must read as unused.
    key = jax.random.key(11)
    got = np.asarray(_sampling.sparse_positions(key, jnp.float32(gamma_value), num_grid, capacity))
    assert np.array_equal(got, _numpy_positions(key, gamma_value, num_grid, capacity))


def test_sparse_positions_edge_gammas():
    assert (np.asarray(_sampling.sparse_positions(KEY, jnp.float32(0.0), 100, 10)) == 100).all()
    assert np.array_equal(np.asarray(_sampling.sparse_positions(KEY, jnp.float32(1.0), 10, 10)), np.arange(10))


def test_sparse_sampler_is_bernoulli_per_corner():
    # 400 draws of a 30 x 30 corner grid at gamma 0.02: each corner's count is Binomial(400, 0.02).
    layout = Layout.of((1, 32, 32, 1), 3, "channels_last", True)
    rate, g = 81 / 512, 0.02  # eq. 1 written out, not the layout under test: 81/512 * 32*32 / (3*3 * 30*30)
    capacity = layout.capacity(rate)
    assert layout.use_sparse(capacity)
    keys = jax.random.split(jax.random.key(5), 400)
    grids = jax.vmap(lambda k: functional.sample_seeds(k, layout, jnp.float32(rate), rate))(keys)
    counts = np.asarray(grids).sum(axis=0).reshape(-1)
    total = 400 * counts.size
    assert within_z(counts.sum(), total * g, total * g * (1 - g))
    # Every corner, including the last ones of the flattened grid (the end of the gap sums):
    # the exact two-sided Binomial(400, 0.02) bound at 1e-6 / 900 per corner is 0 to 30 (its
    # tails summed; a normal bound is far too narrow at a mean of 8).
    assert counts.max() <= 30
    tail = counts.reshape(30, 30)[-5:].sum()
    assert within_z(tail, 400 * 150 * g, 400 * 150 * g * (1 - g))


@pytest.mark.parametrize("rate", [0.0, 1.0])
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_edge_rates(rate, dtype):
    x = nonzero_input((2, 8, 8, 3)).astype(dtype)
    y = drop_block(KEY, x, rate, 3)
    assert y.dtype == dtype
    assert bool((y == x).all()) if rate == 0.0 else bool((y == 0).all())


def test_concrete_rate_above_max_rate_raises():
    x = nonzero_input((2, 8, 8, 3))
    with pytest.raises(ValueError, match=r"`rate`: expected at most 0.1 \(`max_rate`"):
        drop_block(KEY, x, 0.5, 3, max_rate=0.1)
    assert drop_block(KEY, x, jnp.float32(0.1), 3, max_rate=0.1).shape == x.shape  # equal in float32


def test_traced_edge_rates():
    x = nonzero_input((2, 8, 8, 3)) * jnp.inf  # rate 1 must give zeros, not inf * 0
    f = jax.jit(lambda r: drop_block(KEY, x, r, 3, max_rate=1.0))
    assert bool((f(jnp.float32(1.0)) == 0).all())
    # Under a bound below 1 a traced rate is clipped to it: float32(1 - 1e-9) is 1.0.
    near_one = jax.jit(lambda r: drop_block(KEY, jnp.ones((64, 8, 8, 16)), r, 3, max_rate=1 - 1e-9))
    assert bool((near_one(jnp.float32(1 - 1e-9)) != 0).any())
    x = nonzero_input((2, 8, 8, 3))
    g = jax.jit(lambda r: drop_block(KEY, x, r, 3))
    assert np.array_equal(np.asarray(g(jnp.float32(0.0))), np.asarray(x))


@pytest.mark.parametrize("max_rate", [0.3, 1.0])  # the sparse and the dense sampler
def test_a_traced_rate_out_of_range_is_clipped_and_nan_counts_as_zero(max_rate):
    x = nonzero_input((8, 16, 16, 8))
    f = jax.jit(lambda r: drop_block(KEY, x, r, 3, max_rate=max_rate))
    for nothing in (float("nan"), -0.5, -np.inf):
        assert np.array_equal(np.asarray(f(jnp.float32(nothing))), np.asarray(x)), nothing
    for above in (1.5, np.inf):
        assert np.array_equal(np.asarray(f(jnp.float32(above))), np.asarray(f(jnp.float32(max_rate)))), above


def test_a_traced_rate_must_be_a_real_scalar():
    x = nonzero_input((8, 8, 8, 4))
    for bad in (jnp.array([0.0, 0.0, 0.9, 0.9]), jnp.array([0.1]), jnp.array(True)):
        with pytest.raises(ValueError, match=r"`rate`.*traced array"):
            jax.jit(lambda r: drop_block(KEY, x, r, 3))(bad)


@pytest.mark.parametrize("rate", [1 - 1e-8, 1 - 1e-12])
def test_a_rate_just_below_one_is_not_rate_one(rate):
    # float32(rate) is 1.0; only a rate of exactly 1 makes every corner a seed.
    x = nonzero_input((64, 8, 8, 16))
    for max_rate in (None, rate):
        y = np.asarray(drop_block(KEY, x, rate, 3, max_rate=max_rate))
        assert (y != 0).any(), max_rate


def test_dense_sampler_resolves_tiny_seed_probabilities():
    # 4 draws of 2**24 corners at gamma = 1e-9: 0.067 seeds expected (more than 2 with
    # probability 5e-5). A float32 uniform (a 2**-23 grid) draws it as 1.2e-7: 8 expected.
    grid = (4096, 4096)
    counts = [int(_sampling.dense_grid(jax.random.key(i), jnp.float32(1e-9), grid).sum()) for i in range(4)]
    assert sum(counts) <= 2, counts
    g = 0.3
    hits = int(_sampling.dense_grid(KEY, jnp.float32(g), grid).sum())
    n = grid[0] * grid[1]
    assert within_z(hits, n * g, n * g * (1 - g))
    assert bool(_sampling.dense_grid(KEY, jnp.float32(1.0), (4, 4)).all())
    assert not bool(_sampling.dense_grid(KEY, jnp.float32(0.0), (64, 64)).any())


def test_float64_and_scale_precision():
    with jax.enable_x64(True):
        x = nonzero_input((2, 3, 10, 10), dtype=np.float64)
        y = drop_block(KEY, x, 0.2, 3, data_format="channels_first")
        assert y.dtype == jnp.float64
        kept = np.asarray(y) != 0
        s = x.size / kept.sum()
        np.testing.assert_array_equal(np.asarray(y)[kept], np.asarray(x)[kept] * s)


def test_float16_large_tensor_keeps_its_mean():
    x = jnp.ones((4, 64, 64, 64), dtype=jnp.float16)
    y = drop_block(KEY, x, 0.1, 7)
    assert y.dtype == jnp.float16
    assert bool(jnp.isfinite(y).all())
    # On ones the mean is kept/numel * s, s = numel/kept rounded to float16 (2**-11 relative)
    # after float32 (2**-24); a float16 count would overflow and give NaN or zeros.
    assert abs(float(np.asarray(y, dtype=np.float64).mean()) - 1.0) <= 2**-11 + 2**-24


@pytest.mark.parametrize("scale", ["batch", "sample", "none"])
def test_scale_modes(scale):
    x = nonzero_input((3, 9, 9, 2))
    y = np.asarray(drop_block(KEY, x, 0.3, 3, scale=scale, per_channel=False))
    kept = y != 0
    assert (kept == kept[..., :1]).all(), "a shared mask is the same for every channel"
    if scale == "batch":
        factor = np.full(3, x.size / kept.sum())
    elif scale == "sample":
        factor = kept[0].size / kept.reshape(3, -1).sum(axis=1)
    else:
        factor = np.ones(3)
    expected = np.asarray(x) * factor[:, None, None, None].astype(np.float32)
    np.testing.assert_allclose(y[kept], expected[kept], rtol=2e-7)


@pytest.mark.parametrize(
    "shape",
    [
        (2, 255 * 4 * 3),  # groups of exactly 255 words: a full mask puts 255 in every byte lane
        (3, 4 * 257),  # a prime number of words: groups of one word
        (2, 28, 28, 256),
        (2, 7, 5, 3),  # not a whole number of words: summed as bools
        (1, 3),  # less than a word
        (4, 1),
    ],
)
@pytest.mark.parametrize("fill", ["random", "full", "empty"])
def test_count_per_sample_is_the_exact_count(shape, fill):
    rng = np.random.default_rng(sum(shape))
    mask = {"random": rng.random(shape) < 0.7, "full": np.ones(shape, bool), "empty": np.zeros(shape, bool)}[fill]
    counted = jax.jit(_painting.count_per_sample)(jnp.asarray(mask))
    assert counted.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(counted), mask.reshape(shape[0], -1).sum(axis=1))


def test_bad_inputs_raise():
    x = jnp.ones((2, 8, 8, 3))
    with pytest.raises(TypeError):
        drop_block(KEY, x.astype(jnp.int32), 0.1, 3)
    with pytest.raises(TypeError):
        drop_block(KEY, x.astype(bool), 0.1, 3)
    with pytest.raises(TypeError, match=r"float16, bfloat16, float32 or float64\), got dtype float8_e4m3fn"):
        drop_block(KEY, x.astype(jnp.float8_e4m3fn), 0.1, 3)
    for rate in (-0.1, 1.5, float("nan"), True, jnp.array(True), "0.1"):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            drop_block(KEY, x, rate, 3)
    for block in (0, -1, (3, 0), (3, 3, 3), 2.5, True):
        with pytest.raises(ValueError, match="block_size"):
            drop_block(KEY, x, 0.1, block)
    with pytest.raises(ValueError, match=r"block_size \(3, 3\) has 2 spatial dims, so the input must be 4D"):
        drop_block(KEY, jnp.ones((2, 8, 3)), 0.1, (3, 3))
    with pytest.raises(ValueError, match=r"has 1 spatial dim, .*An int block_size serves inputs of any rank"):
        drop_block(KEY, x, 0.1, (3,))
    with pytest.raises(ValueError, match="rank"):
        drop_block(KEY, jnp.ones((2, 3)), 0.1, 3)
    with pytest.raises(ValueError, match="data_format"):
        drop_block(KEY, x, 0.1, 3, data_format="NHWC")
    for key in (0, None, jax.random.split(KEY, 2), jnp.zeros(2, jnp.int32)):
        with pytest.raises(ValueError, match="`key`: expected one JAX PRNG key"):
            drop_block(key, x, 0.1, 3)
    with pytest.raises(ValueError, match=r"batch of keys, map with jax\.vmap\), got .* of shape \(2,\)"):
        drop_block(jax.random.split(KEY, 2), x, 0.1, 3)
    with pytest.raises(ValueError, match="scale"):
        drop_block(KEY, x, 0.1, 3, scale="global")


def test_block_larger_than_map_drops_whole_maps():
    x = jnp.ones((64, 5, 4, 8))
    y = np.asarray(drop_block(KEY, x, 0.5, 9))
    dropped = (y == 0).reshape(64, 20, 8)
    whole = dropped.all(axis=1) | ~dropped.any(axis=1)
    assert whole.all()
    assert np.isfinite(y).all()


def test_empty_batch():
    x = jnp.ones((0, 8, 8, 3))
    assert drop_block(KEY, x, 0.1, 3).shape == (0, 8, 8, 3)


def test_determinism():
    x = nonzero_input((2, 12, 12, 4))
    a, b = drop_block(KEY, x, 0.2, 3), drop_block(KEY, x, 0.2, 3)
    c = drop_block(jax.random.key(1), x, 0.2, 3)
    assert bool((a == b).all())
    assert not bool((a == c).all())


def test_a_traced_rate_under_a_bound_of_zero_is_the_identity() -> None:
    # A config that turns DropBlock off while the loop still feeds it a scheduled rate.
    x = jnp.ones((2, 8, 8, 3))
    step = jax.jit(lambda key, rate: drop_block(key, x, rate, 3, max_rate=0.0))
    assert (step(jax.random.key(0), jnp.float32(0.1)) == x).all()


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_a_concrete_rate_of_any_float_dtype_is_accepted_eagerly(dtype) -> None:
    x = nonzero_input((2, 8, 8, 3))
    key = jax.random.key(0)
    want = drop_block(key, x, float(jnp.asarray(0.25, dtype)), 3)
    assert (drop_block(key, x, jnp.asarray(0.25, dtype), 3) == want).all()


def test_a_mask_beyond_int32_indices_is_refused_with_the_limit():
    # eval_shape allocates nothing: the check runs while tracing.
    x = jax.ShapeDtypeStruct((32768, 1, 1, 65536), jnp.float16)  # 4 GiB
    with pytest.raises(ValueError, match=r"more than 2\*\*31 - 256 elements .*per_channel=False"):
        jax.eval_shape(lambda v: drop_block(jax.random.key(0), v, 0.1, 1), x)
    jax.eval_shape(lambda v: drop_block(jax.random.key(0), v, 0.1, 1, per_channel=False), x)


# 2048 independent maps (per-channel masks) on ones. mean and sd are the conformance oracle's
# closed forms (expected_drop_fraction; sqrt(drop_fraction_variance / 2048)), written out so
# that a wrong gamma or sampler here cannot move them: within 5 sd.
CLOSED_FORMS = [
    (0.5, (16, 16), (3, 3), 0.39262, 0.00181),
    (0.1, (14, 14), (7, 7), 0.09294, 0.00307),
    (0.25, (12, 20), (5, 3), 0.21726, 0.00212),
    (0.2, (4, 9), (7, 7), 0.18647, 0.00744),  # the block clamped to (4, 7)
]


@pytest.mark.parametrize(("rate", "spatial", "block", "mean", "sd"), CLOSED_FORMS)
def test_dropped_fraction_matches_the_closed_form(rate, spatial, block, mean, sd):
    y = drop_block(jax.random.key(3), jnp.ones((64, *spatial, 32)), rate, block)
    assert abs(float(np.asarray(y == 0, dtype=np.float64).mean()) - mean) <= 5 * sd
