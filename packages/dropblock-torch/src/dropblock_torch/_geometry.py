"""Static geometry of one call: shapes and rates known while tracing, as Python numbers."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TypeVar, cast

import torch

from ._core import clamp_block, gamma, gamma_factor, seed_capacity, sparse_is_cheaper, valid_corners

_T = TypeVar("_T")


def static_size(size: int | torch.SymInt) -> int:
    """``size`` as a Python int; under ``torch.compile`` a symbolic size is specialised.

    Dynamo evaluates ``range()`` on concrete ints only, so this guards on the value and
    the sampler's capacity stays a static number (recompiling for a new shape).
    """
    return len(range(size))


def static_rate(rate: _T) -> _T:
    """``rate`` unchanged, except that a float under ``torch.compile`` is specialised.

    The maximum rate sizes the sampler, so it must be a constant of the graph. After a
    compiled function or module sees a second value, Dynamo would make a float argument or
    attribute symbolic; ``as_integer_ratio`` has no symbolic form, so Dynamo guards on the
    value instead (recompiling for a new maximum rate, as for a new shape). The ratio of
    two ints is the float itself, exactly. Anything but a float (a bad argument included)
    is returned for validation to judge.
    """
    if isinstance(rate, float) and torch.compiler.is_compiling():
        numerator, denominator = rate.as_integer_ratio()
        return cast(_T, numerator / denominator)
    return rate


@dataclass(frozen=True)
class Plan:
    """Everything about a call that depends only on shapes and the maximum rate.

    ``grid`` is the corner grid ``(N, C', *V)``; ``mask_shape`` the mask ``(N, C', *S)``
    (``C' = 1`` when the mask is shared by all channels). ``capacity`` is the number of
    seed slots of the sparse sampler, ``sparse`` whether it is the cheaper exact method.
    """

    spatial: tuple[int, ...]
    block: tuple[int, ...]
    grid: tuple[int, ...]
    mask_shape: tuple[int, ...]
    factor: float
    capacity: int
    sparse: bool

    @property
    def corners(self) -> int:
        """Number of corners in the whole grid."""
        return math.prod(self.grid)


def make_plan(shape: torch.Size | tuple[int, ...], block: tuple[int, ...], p_max: float, per_channel: bool) -> Plan:
    """Plan a call on an input of ``shape`` (channels first) whose rate never exceeds ``p_max``.

    >>> plan = make_plan((16, 64, 56, 56), (7, 7), 0.1, per_channel=True)
    >>> plan.grid, plan.capacity, plan.sparse
    ((16, 64, 50, 50), 7331, True)
    >>> make_plan((2, 3, 4, 4), (7, 7), 0.1, per_channel=False).block
    (4, 4)
    """
    dims = tuple(static_size(s) for s in shape)
    if torch.compiler.is_compiling():  # a block size passed to a compiled function may be symbolic too
        return _plan(dims, tuple(static_size(k) for k in block), p_max, per_channel)
    return _cached_plan(dims, tuple(block), float(p_max), bool(per_channel))


def _plan(dims: tuple[int, ...], block: tuple[int, ...], p_max: float, per_channel: bool) -> Plan:
    batch, channels, *spatial_list = dims
    spatial = tuple(spatial_list)
    clamped = clamp_block(spatial, block)
    grid = (batch, channels if per_channel else 1, *valid_corners(spatial, clamped))
    mask_shape = (*grid[:2], *spatial)
    capacity = seed_capacity(math.prod(grid), gamma(p_max, spatial, clamped))
    return Plan(
        spatial=spatial,
        block=clamped,
        grid=grid,
        mask_shape=mask_shape,
        factor=gamma_factor(spatial, clamped),
        capacity=capacity,
        sparse=sparse_is_cheaper(capacity, clamped, math.prod(mask_shape)),
    )


#: Eager calls on the same shape reuse their plan (a ``Plan`` is immutable).
_cached_plan = functools.lru_cache(maxsize=256)(_plan)
