"""Self-tests of the oracle's closed forms against brute force and Monte Carlo."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dropblock_conformance import oracle
from dropblock_conformance.dtypes import round_to
from dropblock_core import gamma, valid_corners


def brute_coverage(spatial: tuple[int, ...], block: tuple[int, ...]) -> np.ndarray:
    counts = np.zeros(spatial, dtype=int)
    for corner in itertools.product(*(range(v) for v in valid_corners(spatial, block))):
        counts[tuple(slice(c, c + k) for c, k in zip(corner, block, strict=False))] += 1
    return counts


@pytest.mark.parametrize(
    ("spatial", "block"), [((7, 7), (3, 3)), ((12, 6), (3, 3)), ((9,), (4,)), ((4, 5, 3), (2, 3, 2)), ((4, 4), (4, 4))]
)
def test_coverage_counts_match_brute_force(spatial, block):
    assert np.array_equal(oracle.coverage_counts(spatial, block), brute_coverage(spatial, block))


def test_shared_coverage_diagonal_is_coverage():
    shared = oracle.shared_coverage((6, 5), (3, 2))
    assert np.array_equal(np.diag(shared), oracle.coverage_counts((6, 5), (3, 2)).reshape(-1))


@pytest.mark.parametrize(
    ("spatial", "block", "rate"), [((7, 7), (3, 3), 0.2), ((10,), (4,), 0.3), ((5, 6), (2, 3), 0.4)]
)
def test_moments_match_monte_carlo(spatial, block, rate):
    """Mean and variance of one map's dropped fraction, against 40k simulated maps."""
    rng = np.random.default_rng(0)
    maps = 40_000
    seeds = oracle.sample_seeds(rng, (maps, 1, *spatial), rate, block)
    dropped = oracle.paint_blocks(seeds, spatial, block).reshape(maps, -1).mean(axis=1)
    variance = oracle.drop_fraction_variance(rate, spatial, block)
    mean = oracle.expected_drop_fraction(rate, spatial, block)
    # Mean: 5 sd of the mean of 40k maps. Variance: the sample variance of n values with
    # kurtosis k (the 4th central moment over the variance squared, estimated from the sample)
    # has relative sd sqrt((k - 1) / n), 5 of them allowed.
    assert abs(dropped.mean() - mean) <= 5 * np.sqrt(variance / maps)
    kurtosis = np.mean((dropped - dropped.mean()) ** 4) / dropped.var() ** 2
    assert abs(dropped.var() / variance - 1) <= 5 * np.sqrt((kurtosis - 1) / maps)


def test_gamma_is_eq1_with_clamped_blocks():
    assert gamma(0.1, (14, 14), (7, 7)) == pytest.approx(0.1 * 196 / (49 * 64))
    assert gamma(0.3, (4, 4), (4, 4)) == pytest.approx(0.3)
    assert gamma(1.0, (56, 56), (7, 7)) == 1.0


def test_apply_seeds_scales_by_float32_count():
    x = np.ones((1, 1, 4, 4))
    seeds = np.zeros((1, 1, 3, 3), dtype=bool)
    seeds[0, 0, 1, 2] = True
    out = oracle.apply_seeds(x, seeds, dtype="float32", block_size=2)
    assert (out == 0).sum() == 4
    assert np.all(out[out != 0] == np.float32(16) / np.float32(12))


def test_bfloat16_rounding_is_nearest_even():
    assert round_to(np.array([1 + 2**-8]), "bfloat16")[0] == 1.0  # tie -> even
    assert round_to(np.array([1 + 3 * 2**-8]), "bfloat16")[0] == 1 + 2**-6  # tie -> even (up)
    assert round_to(np.array([1 + 2**-7]), "bfloat16")[0] == 1 + 2**-7  # exact
