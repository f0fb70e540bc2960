"""The shared rules: what every framework package accepts and rejects."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropblock_core import (
    clamp_block,
    gamma,
    gamma_factor,
    linear_ramp,
    normalize_block_size,
    seed_capacity,
    valid_corners,
    validate_data_format,
    validate_per_channel,
    validate_rate,
    validate_scale,
    validate_schedule,
)


@pytest.mark.parametrize("rate", [0, 0.0, 0.5, 1, 1.0, np.float32(0.25), np.float64(0.75)])
def test_rate_accepts_real_numbers_in_unit_interval(rate):
    assert validate_rate(rate) == float(rate)


@pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan, math.inf, True, False, "0.1", None, 1j, [0.1]])
def test_rate_rejects_everything_else_naming_parameter_and_range(rate):
    with pytest.raises(ValueError, match=r"`p`.*\[0, 1\]"):
        validate_rate(rate, name="p")


@pytest.mark.parametrize(
    ("value", "rank", "expected"),
    [(3, 2, (3, 3)), ((5, 3), 2, (5, 3)), ([4], 1, (4,)), (np.int64(2), 3, (2, 2, 2)), ((1, 2, 3), 3, (1, 2, 3))],
)
def test_block_size_normalises_to_one_int_per_axis(value, rank, expected):
    assert normalize_block_size(value, rank) == expected


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "3", (3,), (3, 0), (3, 3, 3), (3.0, 3), None])
def test_block_size_rejects_everything_else(value):
    with pytest.raises(ValueError, match=r"`block_size`.*2 positive ints"):
        normalize_block_size(value, rank=2)


def test_modes_and_formats():
    assert validate_scale("none") == "none"
    assert validate_data_format("channels_first") == "channels_first"
    assert validate_per_channel(True) is True
    for check, bad in ((validate_scale, "global"), (validate_data_format, "NCHW"), (validate_per_channel, 1)):
        with pytest.raises(ValueError, match="expected"):
            check(bad)


@pytest.mark.parametrize("check", [validate_scale, validate_data_format])
def test_modes_and_formats_are_strings_not_arrays_holding_one(check):
    # `np.array(["batch"]) in ("batch", ...)` is true element-wise: it must still be refused.
    valid = "batch" if check is validate_scale else "channels_last"
    with pytest.raises(ValueError, match="an array or tensor"):
        check(np.array([valid]))


def test_geometry_clamps_each_axis_to_its_map():
    assert clamp_block((4, 20), (7, 7)) == (4, 7)
    assert valid_corners((4, 20), (7, 7)) == (1, 14)
    # Non-square maps use each axis's own size (keras-cv bounds rows by the width).
    assert gamma_factor((20, 8), (3, 3)) == pytest.approx(160 / (9 * 18 * 6))


def test_gamma_never_exceeds_rate_and_rate_one_drops_everything():
    for spatial in [(14, 14), (7, 7), (3, 9), (50,), (4, 5, 6)]:
        for k in range(1, 10):
            block = (k,) * len(spatial)
            assert 0 <= gamma(0.3, spatial, block) <= 0.3 + 1e-12
            assert gamma(1.0, spatial, block) == 1.0


def test_empty_maps_have_no_seeds():
    assert gamma_factor((0, 5), (3, 3)) == 0.0
    assert seed_capacity(0, 0.5) == 0


def test_seed_capacity_covers_binomial_tail():
    # Far above mean + 8 sd, never above the number of corners.
    corners, p = 2_560_000, 0.00256
    mean, sd = corners * p, math.sqrt(corners * p * (1 - p))
    assert mean + 8 * sd < seed_capacity(corners, p) < mean + 12 * sd
    assert seed_capacity(100, 0.9) == 100


def test_linear_ramp_and_its_validation():
    assert linear_ramp(0, 10, 0.1) == 0.0
    assert linear_ramp(5, 10, 0.1) == pytest.approx(0.05)
    assert linear_ramp(50, 10, 0.25, start=0.05) == pytest.approx(0.25)
    assert validate_schedule(0.1, 10, 0.05) == (0.1, 10, 0.05)
    with pytest.raises(ValueError, match="total_steps"):
        validate_schedule(0.1, 0)
    with pytest.raises(ValueError, match="target"):
        validate_schedule(1.5, 10)
