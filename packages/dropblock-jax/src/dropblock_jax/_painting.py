"""Stage 2: the deterministic function ``seeds -> output``.

Seeds become a keep mask, either by painting each sparse seed's block (a scatter with
the block as each seed's update window) or by dilating a dense seed grid (a separable running
maximum along each spatial axis). ``apply_mask`` then scales and masks the input.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._layout import Layout


def paint_positions(positions: jax.Array, layout: Layout) -> jax.Array:
    """Keep mask (``layout.mask_shape``, bool) with the block of every seed position cleared.

    ``positions`` are flat indices into ``layout.grid_shape``; values at or past its size
    are unused slots and never reach the mask.
    """
    grid_shape, mask_shape = layout.grid_shape, layout.mask_shape
    if positions.shape[0] == 0 or math.prod(mask_shape) == 0:
        return jnp.ones(mask_shape, dtype=jnp.bool_)
    valid = positions < layout.num_grid
    coords = list(jnp.unravel_index(jnp.where(valid, positions, 0), grid_shape))
    # One scatter index per seed, with the whole block as its update window. Unused slots
    # write into one spare sample past the mask, so every window is in bounds and the
    # scatter needs no bounds checks (on CPU 3x faster than one index per block element).
    samples = mask_shape[0]
    coords[0] = jnp.where(valid, coords[0], samples)
    window = [1] * len(mask_shape)
    for axis, k in zip(layout.spatial_axes, layout.block, strict=True):
        window[axis] = k
    numbers = lax.ScatterDimensionNumbers(
        update_window_dims=tuple(range(1, len(mask_shape) + 1)),
        inserted_window_dims=(),
        scatter_dims_to_operand_dims=tuple(range(len(mask_shape))),
    )
    dropped = lax.scatter(
        jnp.zeros((samples + 1, *mask_shape[1:]), dtype=jnp.bool_),
        jnp.stack(coords, axis=-1),
        jnp.ones((positions.shape[0], *window), dtype=jnp.bool_),
        numbers,
        indices_are_sorted=True,
        unique_indices=False,
        mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )
    return jnp.logical_not(dropped[:samples])


def dilate_grid(seeds: jax.Array, layout: Layout) -> jax.Array:
    """Keep mask from a dense bool seed grid: position ``p`` is dropped iff a seed lies in
    ``(p - k, p]`` on every spatial axis, computed as one running maximum per axis."""
    hit = seeds.astype(jnp.uint8)
    for axis, k in zip(layout.spatial_axes, layout.block, strict=True):
        if k == 1:
            continue
        pad = [(0, 0, 0)] * hit.ndim
        pad[axis] = (k - 1, k - 1, 0)
        hit = lax.pad(hit, jnp.uint8(0), pad)
        window = [1] * hit.ndim
        window[axis] = k
        hit = lax.reduce_window(hit, jnp.uint8(0), lax.max, tuple(window), (1,) * hit.ndim, "VALID")
    return hit == 0


def compute_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """Scales are computed in float32, or float64 for float64 inputs."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


# A uint32 word holds 4 mask bytes; summing at most 255 words leaves each byte lane <= 255,
# so the lanes never carry into each other.
_LANES = 4
_MAX_WORDS = 255


def count_per_sample(mask: jax.Array) -> jax.Array:
    """Number of true elements of each sample of a bool ``mask`` (int32, shape ``(N,)``).

    The bytes are summed as uint32 words, up to 255 words at a time, then the byte lanes
    of those sums: on CPU about twice as fast as summing the bools one by one. Exact: the
    same integer as ``mask.reshape(N, -1).sum(axis=1)``.
    """
    n = mask.shape[0]
    flat = mask.reshape(n, -1)
    words = flat.shape[1] // _LANES
    if words == 0 or flat.shape[1] % _LANES:
        return flat.sum(axis=1, dtype=jnp.int32)
    group = max(d for d in range(1, _MAX_WORDS + 1) if words % d == 0)
    packed = lax.bitcast_convert_type(flat.astype(jnp.uint8).reshape(n, words, _LANES), jnp.uint32)
    sums = packed.reshape(n, group, words // group).sum(axis=1, dtype=jnp.uint32)
    return lax.bitcast_convert_type(sums, jnp.uint8).sum(axis=(1, 2), dtype=jnp.int32)


def scale_of(keep: jax.Array, layout: Layout, scale: str, dtype: jnp.dtype) -> jax.Array:
    """``numel / kept`` over the tensor (``"batch"``), per sample (``"sample"``), or 1.

    Kept elements are counted exactly in int32 (integer sums do not depend on the order of
    summation, so a sharded call counts the same as an unsharded one); ``kept == 0`` gives 0.
    A mask shared across channels counts once per channel.
    """
    cdt = compute_dtype(dtype)
    if scale == "none":
        return jnp.ones((), dtype=cdt)
    channels = 1 if layout.per_channel else layout.shape[layout.channel_axis]
    n = layout.shape[0]
    per_sample = count_per_sample(keep)
    if scale == "batch":
        kept = per_sample.sum(dtype=jnp.int32).astype(cdt) * channels
        numel = math.prod(layout.shape)
    else:
        kept = per_sample.astype(cdt) * channels
        numel = math.prod(layout.shape[1:])
    s = jnp.where(kept > 0, jnp.asarray(numel, dtype=cdt) / jnp.where(kept > 0, kept, 1), 0)
    s = s.astype(cdt)
    if scale == "sample":
        s = s.reshape((n,) + (1,) * (len(layout.shape) - 1))
    return s


def apply_mask(x: jax.Array, keep: jax.Array, layout: Layout, scale: str) -> jax.Array:
    """``where(keep, x * s, 0)`` in ``x.dtype``; the gradient is ``keep * s``."""
    return _masked_scale(x, keep, scale_of(keep, layout, scale, x.dtype))


def _scale_kept(v: jax.Array, keep: jax.Array, s: jax.Array) -> jax.Array:
    scaled = (v.astype(s.dtype) * s).astype(v.dtype)
    return jnp.where(keep, scaled, jnp.zeros((), dtype=v.dtype))


@jax.custom_jvp
def _masked_scale(x: jax.Array, keep: jax.Array, s: jax.Array) -> jax.Array:
    return _scale_kept(x, keep, s)


@_masked_scale.defjvp
def _masked_scale_jvp(
    primals: tuple[jax.Array, jax.Array, jax.Array], tangents: tuple[jax.Array, jax.Array, jax.Array]
) -> tuple[jax.Array, jax.Array]:
    # Linear in x, with the mask and the scale constants: the tangent is scaled and masked
    # alike (forward mode), and its transpose does the same to the cotangent (reverse mode).
    # Rematerialised, so the residuals are the 1-byte mask and the scalar (or per-sample)
    # scale: otherwise the zeros `where` broadcasts would be saved, 4 bytes per element.
    x, keep, s = primals
    return _scale_kept(x, keep, s), jax.checkpoint(_scale_kept)(tangents[0], keep, s)


def apply_seed_grid(x: jax.Array, seeds: np.ndarray, layout: Layout, scale: str) -> jax.Array:
    """Stage 2 on a given bool seed grid, by the method the layer would choose for as many seeds.

    Sparse painting of the seeds' flat positions when ``dropblock_core.sparse_is_cheaper``
    says so for that many seeds, dense dilation otherwise; then ``apply_mask``.
    """
    positions = np.flatnonzero(seeds).astype(np.int32)
    if layout.use_sparse(len(positions)):
        return _apply_positions(x, jnp.asarray(positions), layout, scale)
    return _apply_grid(x, jnp.asarray(seeds), layout, scale)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _apply_positions(x: jax.Array, positions: jax.Array, layout: Layout, scale: str) -> jax.Array:
    return apply_mask(x, paint_positions(positions, layout), layout, scale)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _apply_grid(x: jax.Array, seeds: jax.Array, layout: Layout, scale: str) -> jax.Array:
    return apply_mask(x, dilate_grid(seeds, layout), layout, scale)
