"""Block geometry and the seed rate ``gamma``, on static shapes.

Notation: spatial sizes ``S_i``, block sizes ``k_i`` (clamped to ``S_i`` at call time),
valid corners per axis ``V_i = S_i - k_i + 1``: a seed at corner ``c`` zeroes
``[c_i, c_i + k_i)`` on every axis, so only corners whose block lies inside the map are
drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def clamp_block(spatial: Sequence[int], block: Sequence[int]) -> tuple[int, ...]:
    """Clamp each block size to its spatial size (behaviour ``block-clamp``).

    >>> clamp_block((4, 9), (7, 7))
    (4, 7)
    """
    return tuple(min(int(k), int(s)) for s, k in zip(spatial, block, strict=True))


def valid_corners(spatial: Sequence[int], block: Sequence[int]) -> tuple[int, ...]:
    """Number of valid block corners per axis, ``S_i - k_i + 1`` with clamped ``k_i``.

    >>> valid_corners((20, 8), (3, 3))
    (18, 6)
    """
    clamped = clamp_block(spatial, block)
    return tuple(int(s) - k + 1 for s, k in zip(spatial, clamped, strict=True))


def num_corners(spatial: Sequence[int], block: Sequence[int]) -> int:
    """Number of valid corners of one map, ``prod(S_i - k_i + 1)``."""
    return math.prod(valid_corners(spatial, block))


def gamma_factor(spatial: Sequence[int], block: Sequence[int]) -> float:
    """``gamma / rate`` for ``rate < 1``: ``prod(S) / (prod(k) * prod(S - k + 1))``.

    Frameworks multiply it by a rate tensor, so a schedule can change the rate without
    retracing. An empty map has no corners and a factor of 0.

    >>> gamma_factor((7, 7), (7, 7))
    1.0
    """
    clamped = clamp_block(spatial, block)
    corners = math.prod(valid_corners(spatial, clamped))
    if corners == 0 or math.prod(spatial) == 0:
        return 0.0
    return math.prod(spatial) / (math.prod(clamped) * corners)


def gamma(rate: float, spatial: Sequence[int], block: Sequence[int]) -> float:
    """Seed probability per valid corner (the paper's eq. 1, capped at 1).

    ``rate == 1`` means "drop everything", so every corner is a seed.

    >>> gamma(1.0, (14, 14), (7, 7))
    1.0
    """
    if rate >= 1.0:
        return 1.0
    return min(1.0, rate * gamma_factor(spatial, block))


def log_failure_bound() -> float:
    """``64 * ln(2)``: the sampler's capacity is exceeded with probability at most ``2**-64``.

    That is far below the resolution of the uniform variates the samplers draw (``2**-24``
    in float32).

    A function returning a literal, not a module-level float: ``torch.compile(dynamic=True)``
    makes a global float symbolic, and the capacity derived from it would stop being an int.

    >>> log_failure_bound() == 64 * math.log(2)
    True
    """
    return 44.3614195558365


def seed_capacity(corners: int, gamma_max: float) -> int:
    """Seed slots a sparse sampler needs for ``corners`` Bernoulli(``gamma_max``) draws.

    The number of seeds is Binomial(corners, gamma). Bernstein's inequality bounds the
    chance that it exceeds ``mu + t`` by ``exp(-t**2 / (2 * (var + t / 3)))``; ``t`` is
    chosen so this is at most 2**-64. The capacity never exceeds ``corners``.

    >>> seed_capacity(2_560_000, 0.00256)
    7331
    >>> seed_capacity(10, 1.0)
    10
    """
    if corners <= 0 or gamma_max <= 0.0:
        return 0
    log_failure = log_failure_bound()
    p = min(1.0, gamma_max)
    mean = corners * p
    var = mean * (1.0 - p)
    t = log_failure / 3 + math.sqrt(log_failure**2 / 9 + 2 * log_failure * var)
    return min(corners, math.ceil(mean + t))


def sparse_is_cheaper(capacity: int, block: Sequence[int], numel: int) -> bool:
    """Whether painting ``capacity`` blocks touches fewer elements than the mask holds.

    Above that, drawing every corner and dilating densely is the cheaper exact method.

    >>> sparse_is_cheaper(7331, (7, 7), 16 * 64 * 56 * 56)
    True
    """
    return capacity * math.prod(block) < numel
