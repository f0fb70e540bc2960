"""The pure function ``drop_block`` that both Flax modules call."""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _painting, _sampling
from ._core import (
    DataFormat,
    ScaleMode,
    at_most,
    invalid_dtype,
    invalid_value,
    validate_data_format,
    validate_per_channel,
    validate_rate,
    validate_scale,
)
from ._layout import Layout

__all__ = ["drop_block"]


def concrete_rate(rate: Any, name: str = "rate") -> float | None:
    """The rate as a validated Python float, or ``None`` when it is traced.

    A concrete rate (Python number, NumPy or JAX scalar) must be a real number in
    [0, 1]; bools and NaN raise ``ValueError`` (``dropblock_core.validate_rate``).
    """
    if isinstance(rate, jax.core.Tracer):  # its value is checked when concrete; its type now
        if rate.shape != () or not (
            jnp.issubdtype(rate.dtype, jnp.floating) or jnp.issubdtype(rate.dtype, jnp.integer)
        ):
            raise ValueError(
                f"Invalid value for `{name}`: expected a real number in [0, 1], got a traced array of shape "
                f"{rate.shape} and dtype {rate.dtype}."
            )
        return None
    if isinstance(rate, numbers.Number) or rate is None or isinstance(rate, str):
        return validate_rate(rate, name)
    array = np.asarray(rate)
    if array.ndim != 0 or array.dtype == np.bool_ or not jnp.issubdtype(array.dtype, jnp.number):
        return validate_rate(rate, name)  # raises with the canonical message
    # bfloat16 and float8 (ml_dtypes) are numbers to jnp, not to np; their .item() is no Python float.
    return validate_rate(float(array) if jnp.issubdtype(array.dtype, jnp.floating) else array.item(), name)


def validate_rng_collection(name: object) -> str:
    """A module's ``rng_collection``: the name of an RNG stream, a ``str``."""
    if not isinstance(name, str):
        raise invalid_value("rng_collection", "the name of an rng stream (a str, such as 'dropout')", name)
    return name


def static_rate(rate: Any, name: str = "rate") -> float:
    """A module's configured rate: concrete and validated (it sizes the sampler)."""
    fixed = concrete_rate(rate, name)
    if fixed is None:
        raise ValueError(f"Invalid value for `{name}`: expected a concrete real number in [0, 1], got a tracer.")
    return fixed


_DTYPES = (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)


def check_input(x: Any) -> jax.Array:
    """Return ``x`` as a JAX array, raising ``TypeError`` unless it is float16, bfloat16, float32 or float64.

    float8 types are refused: their few mantissa bits cannot hold the scale ``numel / kept``.
    """
    x = jnp.asarray(x)
    if x.dtype not in _DTYPES:
        raise invalid_dtype("DropBlock", x.dtype)
    return x


def check_key(key: Any) -> None:
    """Raise ``ValueError`` unless ``key`` is one PRNG key: a typed key of shape ``()`` or a raw uint32 key.

    >>> check_key(jax.random.key(0)); check_key(jax.random.PRNGKey(0))
    >>> check_key(0)
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `key`: expected one JAX PRNG key, such as jax.random.key(0), got 0.
    """
    expected = "one JAX PRNG key, such as jax.random.key(0)"
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    if dtype is not None and shape is not None:
        # The axes a single key has: none for a typed key, one (its words) for a raw uint32 key.
        key_rank = 0 if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) else 1 if dtype == jnp.uint32 else None
        if key_rank is not None and len(shape) == key_rank:
            return
        if key_rank is not None and len(shape) > key_rank:
            raise invalid_value("key", f"{expected} (for a batch of keys, map with jax.vmap)", key)
    raise invalid_value("key", expected, key)


def drop_block(
    key: jax.Array,
    x: jax.Array,
    rate: float | jax.Array,
    block_size: int | tuple[int, ...],
    *,
    data_format: DataFormat = "channels_last",
    per_channel: bool = True,
    scale: ScaleMode = "batch",
    max_rate: float | None = None,
) -> jax.Array:
    """Apply DropBlock to ``x`` in training mode (Ghiasi et al., 2018).

    Seed corners are drawn i.i.d. Bernoulli(``gamma``) over the corners whose block lies
    inside the map, ``gamma = rate * prod(S) / (prod(k) * prod(S - k + 1))`` (capped at 1),
    every seed's block is zeroed and the kept values are rescaled. The spatial rank is
    ``x.ndim - 2`` (1D, 2D or 3D); ``block_size`` is clamped to the map at call time.
    ``x`` must hold its batch axis: under a ``jax.vmap`` over single examples an
    ``(H, W, C)`` image would be read as a batch of 1D maps ``(N, L, C)``. Call it on the
    batch (every sample already gets its own masks), or give a tuple ``block_size`` (or
    the modules' ``spatial_dims``), which fixes the rank and rejects such an input.

    Args:
      key: one JAX PRNG key (``jax.random.key(seed)``, or a legacy ``PRNGKey``); the same
        key gives the same output.
      x: floating-point input ``(N, *spatial, C)`` (``channels_last``) or
        ``(N, C, *spatial)`` (``channels_first``). Integer and bool inputs raise
        ``TypeError``.
      rate: the drop rate in [0, 1] (_not_ the keep rate!): about the fraction of units
        dropped at the usual small rates; overlapping blocks drop less at large ones, and 1
        drops everything. It may be a traced
        scalar under ``jax.jit``, so a schedule does not recompile; a concrete rate is
        validated eagerly.
      block_size: an int, or a tuple with one positive int per spatial dimension.
      data_format: ``"channels_last"`` (Flax's convention) or ``"channels_first"``.
      per_channel: one mask per (sample, channel), as in the paper's Algorithm 1; ``False``
        shares one mask per sample across channels.
      scale: ``"batch"``: kept values are multiplied by ``numel / kept`` over the whole
        array; ``"sample"``: per sample; ``"none"``: not rescaled. Under ``jax.jit`` with
        sharded inputs ``"batch"`` counts over the global array (JAX's global view); inside
        ``shard_map`` it counts over the local shard.
      max_rate: static upper bound on ``rate`` (keyword-only). The sparse sampler draws a
        static number of seed slots sized for this rate, so it sets the cost of a call and
        never its distribution for rates up to it. Defaults to ``rate`` when that is
        concrete (so each new concrete rate compiles a new version: pass ``max_rate``
        when the rate changes from call to call), else 1.0 (which falls back to one draw
        per corner). Pass the schedule's
        target when feeding a traced rate. A concrete rate above ``max_rate`` (compared in
        float32, the precision rates are applied in) raises ``ValueError``; a traced one is
        clipped to ``[0, max_rate]``, NaN counting as 0 (so a traced rate of 1 drops
        everything only when ``max_rate`` is 1; under a bound just below 1 it is a float32
        1.0 that stands for the bound). The masks a key
        gives depend on ``max_rate`` too (it picks and sizes the sampler): pass it
        explicitly to get the same masks whether the rate is concrete or traced.

    Returns:
      An array of the same shape and dtype as ``x``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from dropblock_jax import drop_block
      >>> x = jnp.ones((2, 14, 14, 8))
      >>> y = drop_block(jax.random.key(0), x, 0.1, 7)
      >>> y.shape, y.dtype
      ((2, 14, 14, 8), dtype('float32'))
      >>> bool(((y == 0) | (y > 1)).all())  # dropped, or kept and rescaled
      True
      >>> bool((drop_block(jax.random.key(0), x, 0.0, 7) == x).all())
      True
    """
    check_key(key)
    x = check_input(x)
    data_format = validate_data_format(data_format)
    per_channel = validate_per_channel(per_channel)
    scale = validate_scale(scale)
    Layout.check_block(tuple(x.shape), block_size, data_format)
    fixed = concrete_rate(rate)
    bound = static_rate(max_rate, "max_rate") if max_rate is not None else (1.0 if fixed is None else fixed)
    if fixed is not None:  # compared in float32, the precision the rate is applied in
        fixed = at_most(fixed, bound, "rate", f"at most {bound} (`max_rate`, a module's configured rate)")
    if fixed == 0.0 or bound == 0.0:  # a traced rate under a bound of 0 is clipped to 0
        return x
    if fixed == 1.0:
        return jnp.zeros_like(x)
    layout = Layout.of(tuple(x.shape), block_size, data_format, per_channel)
    if x.size == 0:
        return x
    layout.check_index_range()
    return _train(key, x, rate_in_float32(rate, fixed), layout, scale, bound, fixed is None)


def rate_in_float32(rate: Any, fixed: float | None) -> jax.Array:
    """The rate as the float32 scalar it is applied in, below 1 when a concrete rate is.

    ``float32(1 - 1e-9)`` is 1.0, which would drop everything: a rate of exactly 1 alone
    does; a concrete rate below 1 becomes at most the largest float32 below 1.
    """
    if fixed is not None and fixed < 1.0:
        return jnp.asarray(_below_one(fixed))
    return jnp.asarray(rate, dtype=jnp.float32)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _train(key: jax.Array, x: jax.Array, rate: jax.Array, layout: Layout, scale: str, max_rate: float, traced: bool):
    """Sampling and stage 2 as one compiled computation (inlined when already under ``jit``)."""
    keep = sample_keep_mask(key, layout, rate, max_rate)
    if traced and max_rate >= 1.0:  # a traced rate of 1 drops everything; below a bound < 1 it is clipped
        keep = jnp.logical_and(keep, rate_in_force(rate, max_rate) < 1.0)
    return _painting.apply_mask(x, keep, layout, scale)


def rate_in_force(rate: jax.Array, max_rate: float) -> jax.Array:
    """``rate`` clipped to ``[0, max_rate]`` (kept below 1 when ``max_rate`` is), NaN counting as 0.

    A traced rate cannot be checked, so a value out of range is clipped: a NaN or
    negative rate drops nothing, one above ``max_rate`` drops at ``max_rate``.
    """
    bound = jnp.float32(max_rate) if max_rate >= 1.0 else _below_one(max_rate)
    return jnp.clip(jnp.nan_to_num(rate, nan=0.0), 0.0, bound)


def effective_gamma(rate: jax.Array, layout: Layout, max_rate: float) -> jax.Array:
    """``gamma`` for :func:`rate_in_force` as a float32 scalar (1 when the rate is 1)."""
    clipped = rate_in_force(rate, max_rate)
    gamma = jnp.minimum(clipped * jnp.float32(layout.gamma_factor), 1.0)
    return jnp.where(clipped >= 1.0, 1.0, gamma).astype(jnp.float32)


def _below_one(rate: float) -> np.float32:
    """``float32(rate)`` for a rate below 1, kept below 1 (see :func:`rate_in_float32`)."""
    return min(np.float32(rate), _sampling.BELOW_ONE)


def draw_seeds(key: jax.Array, layout: Layout, rate: jax.Array, max_rate: float) -> tuple[bool, jax.Array]:
    """Stage 1: ``(True, flat positions)`` from the sparse sampler, or ``(False, bool grid)``."""
    gamma = effective_gamma(rate, layout, max_rate)
    capacity = layout.capacity(max_rate)
    if layout.use_sparse(capacity):
        return True, _sampling.sparse_positions(key, gamma, layout.num_grid, capacity)
    return False, _sampling.dense_grid(key, gamma, layout.grid_shape)


def sample_keep_mask(key: jax.Array, layout: Layout, rate: jax.Array, max_rate: float) -> jax.Array:
    """Stage 1 then the painting half of stage 2: the bool keep mask for one call."""
    sparse, seeds = draw_seeds(key, layout, rate, max_rate)
    return _painting.paint_positions(seeds, layout) if sparse else _painting.dilate_grid(seeds, layout)


@functools.partial(jax.jit, static_argnums=(1, 3))
def sample_seeds(key: jax.Array, layout: Layout, rate: jax.Array, max_rate: float) -> jax.Array:
    """Stage 1 alone: the bool seed grid (``layout.grid_shape``) the layer draws for ``key``."""
    sparse, seeds = draw_seeds(key, layout, rate, max_rate)
    return _sampling.positions_to_grid(seeds, layout.grid_shape) if sparse else seeds
