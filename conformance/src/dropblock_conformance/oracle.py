"""The NumPy reference implementation of ``shared_spec/dropblock.yaml``.

Written for clarity, not speed: seeds are one Bernoulli draw per valid corner and blocks
are painted by shifting the seed grid once per block offset. Every framework package
must produce the same distribution (stage 1) and the same function of the seeds
(stage 2); see ``docs/algorithm.md``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dropblock_core import (
    clamp_block,
    gamma,
    linear_ramp,
    normalize_block_size,
    valid_corners,
    validate_data_format,
    validate_per_channel,
    validate_rate,
    validate_scale,
    validate_schedule,
)

from .dtypes import round_to, scale_dtype


def to_channels_first(a: np.ndarray, data_format: str) -> np.ndarray:
    """``(N, *S, C)`` -> ``(N, C, *S)`` for channels_last; unchanged otherwise."""
    return np.moveaxis(a, -1, 1) if data_format == "channels_last" else a


def from_channels_first(a: np.ndarray, data_format: str) -> np.ndarray:
    """``(N, C, *S)`` -> ``(N, *S, C)`` for channels_last; unchanged otherwise."""
    return np.moveaxis(a, 1, -1) if data_format == "channels_last" else a


def spatial_shape(shape: Sequence[int], data_format: str) -> tuple[int, ...]:
    """The spatial sizes of an input of ``shape``."""
    return tuple(shape[1:-1]) if data_format == "channels_last" else tuple(shape[2:])


def clamped_block(spatial: Sequence[int], block_size: int | Sequence[int]) -> tuple[int, ...]:
    """The block a ``block_size`` gives on maps of size ``spatial``: normalised, then clamped to the map."""
    return clamp_block(spatial, normalize_block_size(block_size, len(spatial)))


def corner_grid(
    shape: Sequence[int], block_size: int | Sequence[int], data_format: str, per_channel: bool
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The channels-first seed grid ``(N, C', *V)`` of an input of ``shape``, its spatial sizes and block."""
    spatial = spatial_shape(shape, data_format)
    block = clamped_block(spatial, block_size)
    channels = shape[-1] if data_format == "channels_last" else shape[1]
    return (shape[0], channels if per_channel else 1, *valid_corners(spatial, block)), spatial, block


def sample_seeds(
    rng: np.random.Generator,
    shape: Sequence[int],
    rate: float,
    block_size: int | Sequence[int],
    *,
    data_format: str = "channels_first",
    per_channel: bool = True,
) -> np.ndarray:
    """Stage 1: i.i.d. Bernoulli(gamma) seeds over the valid corners, in ``x``'s layout."""
    grid, spatial, block = corner_grid(shape, block_size, data_format, per_channel)
    seeds = rng.random(grid) < gamma(rate, spatial, block)
    return from_channels_first(seeds, data_format)


def paint_blocks(seeds_cf: np.ndarray, spatial: Sequence[int], block: Sequence[int]) -> np.ndarray:
    """Channels-first seeds ``(N, C', *V)`` -> dropped mask ``(N, C', *S)``."""
    dropped = np.zeros(seeds_cf.shape[:2] + tuple(spatial), dtype=bool)
    corners = seeds_cf.shape[2:]
    for offset in itertools.product(*(range(k) for k in block)):
        window = (slice(None), slice(None), *(slice(o, o + v) for o, v in zip(offset, corners, strict=True)))
        dropped[window] |= seeds_cf
    return dropped


def scale_factors(keep_cf: np.ndarray, x_shape_cf: Sequence[int], scale: str, dtype: str) -> np.ndarray:
    """The factor ``s`` per sample, shape ``(N,)``, in the scale precision of ``dtype``."""
    n = x_shape_cf[0]
    if scale == "none":
        return np.ones(n)
    ftype = np.dtype(scale_dtype(dtype)).type
    # A shared mask (C' == 1) counts once per channel.
    per_sample = keep_cf.reshape(n, math.prod(keep_cf.shape[1:])).sum(axis=1, dtype=np.int64)
    per_sample = per_sample * (x_shape_cf[1] // keep_cf.shape[1])
    numel = math.prod(x_shape_cf[1:])
    if scale == "batch":
        kept, total = per_sample.sum(), numel * n
        factor = ftype(total) / ftype(kept) if kept > 0 else ftype(0)
        return np.full(n, float(factor))
    return np.array([float(ftype(numel) / ftype(k)) if k > 0 else 0.0 for k in per_sample])


def apply_seeds(
    x: np.ndarray,
    seeds: np.ndarray,
    *,
    dtype: str,
    block_size: int | Sequence[int],
    data_format: str = "channels_first",
    scale: str = "batch",
) -> np.ndarray:
    """Stage 2: paint blocks, scale the kept elements, round to ``dtype`` (as float64)."""
    x_cf = to_channels_first(np.asarray(x, dtype=np.float64), data_format)
    spatial = x_cf.shape[2:]
    block = clamped_block(spatial, block_size)
    keep = ~paint_blocks(to_channels_first(seeds, data_format), spatial, block)
    factors = scale_factors(keep, x_cf.shape, scale, dtype)
    factors = factors.reshape((-1,) + (1,) * (x_cf.ndim - 1))
    out = np.where(keep, round_to(x_cf * factors, dtype), 0.0)
    return from_channels_first(out, data_format)


def drop_block(
    x: np.ndarray,
    rate: float,
    block_size: int | Sequence[int],
    *,
    rng: np.random.Generator,
    dtype: str = "float32",
    training: bool = True,
    data_format: str = "channels_first",
    per_channel: bool = True,
    scale: str = "batch",
) -> np.ndarray:
    """The whole layer: identity unless training (or nothing to drop), otherwise stage 2 of stage 1."""
    check_params(rate, block_size, x.ndim - 2, data_format, per_channel, scale)
    if not training or rate == 0.0 or x.size == 0:
        return round_to(x, dtype)
    seeds = sample_seeds(rng, x.shape, rate, block_size, data_format=data_format, per_channel=per_channel)
    return apply_seeds(x, seeds, dtype=dtype, block_size=block_size, data_format=data_format, scale=scale)


def check_params(
    rate: object, block_size: object, rank: int, data_format: object, per_channel: object, scale: object
) -> None:
    """Raise ``ValueError`` for any parameter outside the spec."""
    validate_rate(rate)
    normalize_block_size(block_size, rank)
    validate_data_format(data_format)
    validate_per_channel(per_channel)
    validate_scale(scale)


def coverage_counts(spatial: Sequence[int], block: Sequence[int]) -> np.ndarray:
    """``n(pos)``: how many valid corners' blocks cover each position."""
    counts = np.ones((), dtype=np.int64)
    for s, k, v in zip(spatial, clamp_block(spatial, block), valid_corners(spatial, block), strict=True):
        p = np.arange(s)
        axis = np.minimum(p, v - 1) - np.maximum(p - k + 1, 0) + 1
        counts = np.multiply.outer(counts, axis)
    return counts


def shared_coverage(spatial: Sequence[int], block: Sequence[int]) -> np.ndarray:
    """``|A(p) & A(q)|`` for every pair of positions, shape ``(P, P)``."""
    shared = np.ones((1, 1), dtype=np.int64)
    for s, k, v in zip(spatial, clamp_block(spatial, block), valid_corners(spatial, block), strict=True):
        p = np.arange(s)
        lo, hi = np.minimum.outer(p, p), np.maximum.outer(p, p)
        axis = np.maximum(np.minimum(lo, v - 1) - np.maximum(hi - k + 1, 0) + 1, 0)
        shared = np.einsum("ab,cd->acbd", shared, axis).reshape(shared.shape[0] * s, shared.shape[1] * s)
    return shared


def keep_probability(rate: float, spatial: Sequence[int], block: Sequence[int]) -> np.ndarray:
    """Probability that each position is kept, ``(1 - gamma) ** n(pos)``."""
    return (1.0 - gamma(rate, spatial, block)) ** coverage_counts(spatial, block)


def expected_drop_fraction(rate: float, spatial: Sequence[int], block: Sequence[int]) -> float:
    """``E[dropped fraction] = 1 - mean_pos (1 - gamma) ** n(pos)`` (behaviour 9)."""
    return float(1.0 - keep_probability(rate, spatial, block).mean())


def drop_fraction_variance(rate: float, spatial: Sequence[int], block: Sequence[int]) -> float:
    """Exact variance of one map's dropped fraction (pairs of positions: :func:`_kept_pairs`)."""
    keep, both = _kept_pairs(rate, spatial, block)
    return float((both - np.outer(keep, keep)).sum() / keep.size**2)


def _kept_pairs(rate: float, spatial: Sequence[int], block: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Each position's keep probability ``(P,)`` and each pair's both-kept probability ``(P, P)``.

    Positions ``p`` and ``q`` are both kept with probability
    ``(1 - gamma) ** (n(p) + n(q) - |A(p) & A(q)|)``, ``A(p)`` the corners covering ``p``.
    """
    g = gamma(rate, spatial, block)
    n = coverage_counts(spatial, block).reshape(-1)
    both = (1.0 - g) ** (n[:, None] + n[None, :] - shared_coverage(spatial, block))
    return (1.0 - g) ** n, both


def co_drop_moments(rate: float, spatial: Sequence[int], block: Sequence[int]) -> tuple[float, float]:
    """Mean and variance of the number of positions dropped in both of two independent maps.

    With ``c(p, q)`` the probability that ``p`` and ``q`` are both dropped in one map, the
    count has mean ``sum_p q(p)**2`` and variance ``sum_{p,q} c(p, q)**2 - (sum_p q(p)**2)**2``.
    """
    keep, both_kept = _kept_pairs(rate, spatial, block)
    both_dropped = 1.0 - keep[:, None] - keep[None, :] + both_kept
    mean = float(((1.0 - keep) ** 2).sum())
    return mean, float((both_dropped**2).sum() - mean**2)


def mask_collision_bound(rate: float, spatial: Sequence[int], block: Sequence[int]) -> float:
    """An upper bound on the probability that two independent maps have the same mask.

    Positions whose coordinates are multiples of the block size differ by at least the
    block in some axis, so no corner covers two of them: their drops are independent, and
    two masks agree on all of them with probability ``prod q**2 + (1 - q)**2``.
    """
    clamped = clamp_block(spatial, block)
    lattice = tuple(slice(0, None, k) for k in clamped)
    dropped = 1.0 - keep_probability(rate, spatial, block)[lattice]
    return float(np.prod(dropped**2 + (1.0 - dropped) ** 2))


@dataclass
class LinearSchedule:
    """The paper's scheduled DropBlock as plain state: a step counter and a ramp."""

    target: float
    total_steps: int
    start: float = 0.0
    step_count: int = 0

    def __post_init__(self) -> None:
        validate_schedule(self.target, self.total_steps, self.start)

    @property
    def rate(self) -> float:
        return float(linear_ramp(self.step_count, self.total_steps, self.target, self.start))

    def step(self) -> None:
        self.step_count += 1

    def state_dict(self) -> dict[str, int]:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step_count = int(state["step_count"])
