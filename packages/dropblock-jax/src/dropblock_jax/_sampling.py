"""Stage 1: draw the seed corners.

Two exact samplers of i.i.d. Bernoulli(``gamma``) corners over the flattened corner grid:

* ``sparse_positions`` draws ``capacity`` geometric gaps ``floor(log(U) / log(1 - gamma))``
  and takes running sums, giving the sorted flat positions of the seeds (slots past the
  end of the grid are unused). ``capacity`` is static (``dropblock_core.seed_capacity``),
  so shapes never depend on the rate.
* ``dense_grid`` draws one Bernoulli per corner, used when painting ``capacity`` blocks
  would touch more elements than the mask holds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_GAP_CAP = float(2**31 - 128)  # exact in float32 and in int32
#: The largest float32 below 1: where a rate or seed probability below 1 must stay below 1.
BELOW_ONE = np.nextafter(np.float32(1.0), np.float32(0.0))


def sparse_positions(key: jax.Array, gamma: jax.Array, num_grid: int, capacity: int) -> jax.Array:
    """Flat seed positions, sorted; slots at or past ``num_grid`` hold ``num_grid`` (unused).

    Gaps between consecutive seeds of a Bernoulli(``gamma``) process are i.i.d.
    Geometric(``gamma``) (failures before a success): ``P(G >= g) = (1 - gamma)**g``,
    which is ``P(U <= (1 - gamma)**g)`` for ``U`` uniform on (0, 1].
    """
    u = 1.0 - jax.random.uniform(key, (capacity,), dtype=jnp.float32)  # (0, 1]
    gamma = gamma.astype(jnp.float32)
    safe = jnp.where(gamma > 0.0, gamma, 0.5)
    gaps = jnp.floor(jnp.log(u) / jnp.log1p(-safe))
    gaps = jnp.where(gamma > 0.0, jnp.minimum(gaps, _GAP_CAP), _GAP_CAP)
    steps = jnp.minimum(gaps.astype(jnp.int32), num_grid) + 1  # in [1, num_grid + 1]
    # The same integer sums as jnp.cumsum, whose reduce_window lowering is 2x slower on CPU.
    ends = lax.associative_scan(jnp.add, steps)
    # True running sums increase strictly; the first one past the grid is either > num_grid
    # or wrapped below 1 (it is < 2**32), and every later slot is unused too.
    previous = jnp.concatenate([jnp.zeros((1,), jnp.int32), ends[:-1]])
    inside = (ends <= num_grid) & (ends > previous)
    first_out = jnp.where(inside.all(), capacity, jnp.argmin(inside))
    valid = jnp.arange(capacity) < first_out
    return jnp.where(valid, ends - 1, num_grid)


def dense_grid(key: jax.Array, gamma: jax.Array, grid_shape: tuple[int, ...]) -> jax.Array:
    """One Bernoulli(``gamma``) draw per corner: a bool grid of ``grid_shape``.

    A corner is a seed when 32 random bits fall below ``gamma * 2**32``: a resolution of
    ``2**-32`` (a float32 uniform has ``2**-23``, which would draw a seed probability of
    1e-9 as about 1.2e-7).
    """
    bits = jax.random.bits(key, grid_shape, dtype=jnp.uint32)
    gamma = gamma.astype(jnp.float32)
    # Exact: a float32 below 1 times 2**32 is an integer or rounds to one, at most 2**32 - 256.
    below_one = jnp.minimum(gamma, BELOW_ONE)
    threshold = jnp.round(below_one * jnp.float32(2.0**32)).astype(jnp.uint32)
    return (gamma >= 1.0) | (bits < threshold)


def positions_to_grid(positions: jax.Array, grid_shape: tuple[int, ...]) -> jax.Array:
    """The bool corner grid holding the sparse sampler's seeds (for inspection and tests)."""
    size = 1
    for d in grid_shape:
        size *= d
    flat = jnp.zeros((size,), dtype=jnp.bool_).at[positions].set(True, mode="drop")
    return flat.reshape(grid_shape)
