"""The two stages: plan (capacity), the exact samplers, and the two painters."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from dropblock_tf import _masking, _sampling, ops
from dropblock_tf._core import gamma, seed_capacity
from dropblock_tf._plan import batch_parts, make_plan, tf_seed_capacity


@pytest.mark.parametrize("corners", [0, 1, 10, 2500, 2_560_000, 10**9])
@pytest.mark.parametrize("g", [0.0, 1e-4, 0.00256, 0.1, 0.5, 1.0])
def test_tf_capacity_matches_core(corners, g):
    assert int(tf_seed_capacity(tf.constant(corners, tf.int64), g)) == seed_capacity(corners, g)


@pytest.mark.parametrize(
    ("shape", "block", "channels_last", "per_channel"),
    [
        ((16, 56, 56, 64), (7, 7), True, True),
        ((4, 3, 20, 8), (3, 3), False, False),
        ((2, 5, 4, 3), (7, 7), True, True),
        ((3, 30, 4), (5,), True, True),
        ((2, 6, 7, 8, 3), (2, 3, 4), True, False),
    ],
)
def test_dynamic_plan_matches_static(shape, block, channels_last, per_channel):
    static = make_plan(list(shape), block, channels_last=channels_last, per_channel=per_channel, max_rate=0.1)
    dims = [tf.constant(d, tf.int64) for d in shape]
    dynamic = make_plan(dims, block, channels_last=channels_last, per_channel=per_channel, max_rate=0.1)
    assert int(dynamic.capacity) == static.capacity
    assert bool(dynamic.sparse) == static.sparse
    assert math.isclose(float(dynamic.factor), static.factor, rel_tol=1e-12)
    assert [int(k) for k in dynamic.block] == list(static.block)
    rate = make_plan(
        list(shape), block, channels_last=channels_last, per_channel=per_channel, max_rate=tf.constant(0.1, tf.float64)
    )
    assert int(rate.capacity) == static.capacity
    assert bool(rate.sparse) == static.sparse


@pytest.mark.parametrize(("batch", "sizes"), [(0, (0,)), (1, (1,)), (2, (1, 1)), (5, (3, 2)), (16, (8, 8))])
def test_batch_parts_halve_the_batch(batch, sizes):
    assert batch_parts(batch) == sizes
    dynamic = batch_parts(tf.constant(batch, tf.int64))  # always two parts, maybe one empty
    assert [int(n) for n in dynamic] == [(batch + 1) // 2, batch // 2]
    plan = make_plan([batch, 9, 9, 4], (3, 3), channels_last=True, per_channel=True, max_rate=0.1)
    assert [part.grid_dims for part in plan.parts] == ([(n, 7, 7, 4) for n in sizes] if len(sizes) > 1 else [])
    assert all(part.parts == () for part in plan.parts)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000])
def test_running_sum_is_exact(n):
    values = np.random.default_rng(n).integers(0, 2**40, n).astype(np.float64)
    got = _sampling.running_sum(tf.constant(values, tf.float64)).numpy()
    np.testing.assert_array_equal(got.astype(np.int64), np.cumsum(values.astype(np.int64)))


def test_running_sum_past_2_to_the_53_stays_past_it():
    # The sums from the second on are at least 2**53: not exact, but never rounded below it.
    values = tf.constant([2.0**52, 2.0**52, 3.0, 1.0, 2.0**60, 0.0, 5.0, 7.0, 1.0], tf.float64)
    got = _sampling.running_sum(values).numpy()
    assert got[0] == 2.0**52
    assert (got[1:] >= 2.0**53).all()
    assert (np.diff(got) >= 0).all()


def test_paper_setting_uses_the_sparse_sampler():
    plan = make_plan([16, 56, 56, 64], (7, 7), channels_last=True, per_channel=True, max_rate=0.1)
    assert plan.sparse is True
    assert plan.capacity == seed_capacity(16 * 64 * 50 * 50, gamma(0.1, (56, 56), (7, 7)))


def _reference_keep(seeds_cf: np.ndarray, spatial: tuple[int, ...], block: tuple[int, ...]) -> np.ndarray:
    """Channels-first seeds (N, C', *V) -> keep mask (N, C', *S), by looping over blocks."""
    dropped = np.zeros(seeds_cf.shape[:2] + spatial, dtype=bool)
    for corner in zip(*np.nonzero(seeds_cf), strict=True):
        n, c, *v = corner
        dropped[(n, c, *(slice(vi, vi + k) for vi, k in zip(v, block, strict=True)))] = True
    return ~dropped


CASES = [
    ((2, 3, 9, 11), (3, 3), "channels_first", True),
    ((2, 3, 9, 11), (4, 2), "channels_first", False),
    ((2, 8, 6, 3), (7, 7), "channels_last", True),
    ((3, 17, 2), (4,), "channels_last", True),
    ((2, 2, 5, 6, 4), (2, 3, 2), "channels_first", True),
    ((2, 5, 6, 4, 3), (9, 2, 3), "channels_last", False),
]


@pytest.mark.parametrize(("shape", "block", "data_format", "per_channel"), CASES)
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("dynamic", [False, True])
def test_painters_agree_with_a_reference(shape, block, data_format, per_channel, per_sample, dynamic):
    last = data_format == "channels_last"
    dims = [tf.constant(d, tf.int64) for d in shape] if dynamic else list(shape)
    plan = make_plan(dims, block, channels_last=last, per_channel=per_channel, max_rate=0.3)
    grid_shape = [int(d) for d in plan.grid_dims]
    seeds = np.random.default_rng(len(shape)).random(grid_shape) < 0.15
    keep_d, kept_d = _masking.dilate(tf.constant(seeds), plan, per_sample=per_sample)
    positions = tf.where(tf.reshape(seeds, [-1]))[:, 0]
    # Pad with invalid slots, as the sparse sampler leaves them.
    positions = tf.concat([positions, tf.constant([10**6, 10**7], tf.int64)], 0)
    valid = tf.concat([tf.ones(tf.shape(positions)[0] - 2, tf.bool), tf.zeros([2], tf.bool)], 0)
    keep_p, kept_p = _masking.paint(positions, valid, plan, per_sample=per_sample)
    to_cf = (lambda a: np.moveaxis(a, -1, 1)) if last else (lambda a: a)
    spatial = tuple(shape[1:-1] if last else shape[2:])
    clamped = tuple(min(k, s) for k, s in zip(block, spatial, strict=True))
    expected = _reference_keep(to_cf(seeds), spatial, clamped)
    np.testing.assert_array_equal(to_cf(np.asarray(keep_d)), expected)
    np.testing.assert_array_equal(to_cf(np.asarray(keep_p)), expected)
    counts = expected.reshape(shape[0], -1).sum(axis=1) if per_sample else [expected.sum()]
    np.testing.assert_array_equal(kept_d, counts)
    np.testing.assert_array_equal(kept_p, counts)


def _seeds(shape, block, sparse, seed, rate=0.1, channels_last=True):
    plan = make_plan(list(shape), block, channels_last=channels_last, per_channel=True, max_rate=rate)
    plan = dataclasses.replace(plan, sparse=sparse)
    return np.asarray(ops.sample_seed_grid(plan, rate, ops.as_stateless_seed(seed)))


@pytest.mark.parametrize("sparse", [True, False])
def test_samplers_draw_bernoulli_gamma_seeds(sparse):
    """Seed count within 5 binomial standard deviations; per-corner counts pass a chi-square bound."""
    shape, block = (64, 14, 14, 32), (3, 3)
    g = 0.1 * 14 * 14 / (3 * 3 * 12 * 12)  # eq. 1 written out, not the gamma under test
    seeds = _seeds(shape, block, sparse, (3, 4))
    total = seeds.size
    mean, sd = total * g, math.sqrt(total * g * (1 - g))
    assert abs(seeds.sum() - mean) <= 5 * sd
    per_corner = seeds.sum(axis=(0, 3)).reshape(-1)  # 144 corners, each Binomial(64 * 32, g)
    m = 64 * 32
    chi2 = float((((per_corner - m * g) ** 2) / (m * g * (1 - g))).sum())
    # The chi-square(df) quantile 5 normal sd up (probability 2.9e-7), by Wilson-Hilferty: a
    # plain df + 5 sd is exceeded about 30 times as often.
    df = per_corner.size
    assert chi2 <= df * (1 - 2 / (9 * df) + 5 * math.sqrt(2 / (9 * df))) ** 3


def test_sparse_sampler_gaps_are_geometric():
    """Gaps between successive seeds in the flat grid: P(gap >= j) = (1 - g)^j, checked at its quartiles."""
    shape, block = (32, 20, 20, 16), (5, 5)
    seeds = _seeds(shape, block, True, (5, 6)).reshape(-1)
    g = 0.1 * 20 * 20 / (5 * 5 * 16 * 16)  # eq. 1 written out, not the gamma under test
    gaps = np.diff(np.flatnonzero(seeds)) - 1
    for q in (0.25, 0.5, 0.75):
        j = math.ceil(math.log(q) / math.log(1 - g))
        p = (1 - g) ** j
        frac = (gaps >= j).mean()
        assert abs(frac - p) <= 5 * math.sqrt(p * (1 - p) / gaps.size)


def test_sparse_and_dense_both_reachable_for_the_layer():
    small = make_plan([2, 4, 4, 3], (3, 3), channels_last=True, per_channel=True, max_rate=0.5)
    big = make_plan([8, 28, 28, 256], (7, 7), channels_last=True, per_channel=True, max_rate=0.1)
    assert small.sparse is False
    assert big.sparse is True


def test_the_plan_clamps_the_block_to_the_map():
    plan = make_plan([1, 1, 5, 6], (2, 9), channels_last=False, per_channel=True, max_rate=0.1)
    assert plan.block == (2, 6)


@pytest.mark.parametrize(
    ("shape", "block", "rate", "data_format", "scale"),
    [
        ((8, 28, 28, 16), (7, 7), 0.1, "channels_last", "batch"),  # sparse sampler
        ((2, 3, 9, 9), (3, 3), 0.4, "channels_first", "sample"),  # dense sampler
        ((4, 16, 12, 12), (5, 3), 0.1, "channels_first", "none"),
    ],
)
def test_stage_one_then_stage_two_is_the_whole_op(shape, block, rate, data_format, scale):
    """The seeds the adapter reports, painted and scaled, give exactly what drop_block returns."""
    x = tf.random.stateless_uniform(shape, seed=(0, 1))
    plan = make_plan(list(shape), block, channels_last=data_format == "channels_last", per_channel=True, max_rate=rate)
    grid = ops.sample_seed_grid(plan, rate, ops.as_stateless_seed((7, 0)))
    keep, kept = _masking.dilate(grid, plan, per_sample=scale == "sample")
    expected = _masking.apply_keep(x, (keep,), kept, scale)
    got = ops.drop_block(x, rate, block, seed=(7, 0), data_format=data_format, scale=scale)
    np.testing.assert_array_equal(got, expected)


def test_corner_decoding_is_exact_in_graphs():
    # Grappler rewrites division by a constant as multiplication by the reciprocal; at 101
    # exact multiples below 430k (divisor 3364, a 58x58 corner grid) that floors one too low,
    # which painted a seed's block at a wrapped place. The decoding must stay exact.
    n = np.arange(2 * 64 * 58 * 58, dtype=np.float64)
    decode = tf.function(lambda v: _masking._floor_divide(v + 0.5, tf.constant(3364.0, tf.float64)))
    np.testing.assert_array_equal(decode(tf.constant(n)).numpy(), np.floor(n / 3364.0))
    plain = tf.function(lambda v: tf.floor(v / tf.constant(3364.0, tf.float64)))
    assert (plain(tf.constant(n)).numpy() != np.floor(n / 3364.0)).any(), "the rewrite this guards against is gone"
