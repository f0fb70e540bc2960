"""Properties every sampled output must satisfy exactly (block geometry and scaling)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dropblock_core import valid_corners

from .adapter import Output
from .dtypes import round_to, scale_dtype, ulp
from .oracle import clamped_block, paint_blocks, spatial_shape, to_channels_first


def full_zero_blocks(dropped_cf: np.ndarray, block: Sequence[int]) -> np.ndarray:
    """Corners ``(N, C, *V)`` whose whole block is dropped."""
    spatial = dropped_cf.shape[2:]
    corners = valid_corners(spatial, block)
    full = np.ones(dropped_cf.shape[:2] + tuple(corners), dtype=bool)
    for offset in itertools.product(*(range(k) for k in block)):
        window = (slice(None), slice(None), *(slice(o, o + v) for o, v in zip(offset, corners, strict=True)))
        full &= dropped_cf[window]
    return full


def assert_block_geometry(dropped_cf: np.ndarray, block: Sequence[int]) -> None:
    """Every dropped position lies in a fully dropped block that is inside the map."""
    covered = paint_blocks(full_zero_blocks(dropped_cf, block), dropped_cf.shape[2:], block)
    stray = dropped_cf & ~covered
    assert not stray.any(), (
        f"{int(stray.sum())} zeros are not part of a full {tuple(block)} block inside the map; "
        f"first at {tuple(int(i) for i in np.argwhere(stray)[0])} (channels-first index)"
    )


def expected_scale(dropped_cf: np.ndarray, scale: str, dtype: str) -> np.ndarray:
    """Per-sample ``s`` implied by an output's own zero pattern, shape ``(N,)``."""
    n = dropped_cf.shape[0]
    if scale == "none":
        return np.ones(n)
    ftype = np.dtype(scale_dtype(dtype)).type
    kept = (~dropped_cf).reshape(n, math.prod(dropped_cf.shape[1:])).sum(axis=1)
    per_sample = math.prod(dropped_cf.shape[1:])
    if scale == "batch":
        total = kept.sum()
        return np.full(n, float(ftype(per_sample * n) / ftype(total)) if total else 0.0)
    return np.array([float(ftype(per_sample) / ftype(k)) if k else 0.0 for k in kept])


def assert_close_ulp(actual: np.ndarray, expected: np.ndarray, dtype: str, max_ulp: float, what: str) -> None:
    """``|actual - expected| <= max_ulp * ulp(expected)`` element-wise."""
    err = np.abs(actual - expected)
    bound = max_ulp * ulp(expected, dtype)
    bad = err > bound
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} values differ by more than {max_ulp} ulp ({dtype}); first at flat index "
            f"{i}: got {actual.reshape(-1)[i]!r}, expected {expected.reshape(-1)[i]!r}"
        )


def assert_valid_sample(x: np.ndarray, out: Output, params: Mapping[str, Any], dtype: str, max_ulp: float = 2) -> None:
    """The output of one training-mode call is a legal DropBlock output of ``x``.

    ``x`` must be non-zero everywhere, so zeros in the output are exactly the dropped set.
    """
    assert out.dtype == dtype, f"dtype changed: {dtype} in, {out.dtype} out"
    values = out.values
    assert values.shape == x.shape, f"shape changed: {x.shape} in, {values.shape} out"
    assert np.isfinite(values).all(), "non-finite values in the output"
    data_format = params.get("data_format", "channels_first")
    spatial = spatial_shape(x.shape, data_format)
    block = clamped_block(spatial, params["block_size"])
    dropped = to_channels_first(values == 0, data_format)
    if x.shape[0] == 0:
        return
    assert_block_geometry(dropped, block)
    if not params.get("per_channel", True):
        assert (dropped == dropped[:, :1]).all(), "per_channel=False but channels of a sample have different masks"
    factors = expected_scale(dropped, params.get("scale", "batch"), dtype)
    x_cf = to_channels_first(x, data_format)
    expected = round_to(x_cf * factors.reshape((-1,) + (1,) * (x.ndim - 1)), dtype)
    kept = ~dropped
    assert_close_ulp(
        to_channels_first(values, data_format)[kept], expected[kept], dtype, max_ulp, "kept values != x * s"
    )
