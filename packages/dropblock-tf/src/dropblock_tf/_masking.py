"""Stage 2: seeds -> keep mask and kept counts -> scaled output (deterministic).

A seed at corner ``c`` drops ``[c_i, c_i + k_i)`` on every spatial axis.

* ``paint`` (sparse seeds): every seed writes its ``prod(k)`` block offsets into a uint8
  buffer with one ``SparseToDense`` (duplicates allowed, a plain store on CPU; TF's scatter
  kernels are 30x slower here). The buffer holds one row per count (the whole mask, or one
  row per sample for ``scale="sample"``), each padded to a multiple of 2040 bytes so the
  kept count is a carry-free sum of the rows read as int64 words (255 words per group, one
  byte lane per element). Invalid seed slots write into a scratch region past the rows,
  never into the mask.
* ``dilate`` (dense seed grid): a position is dropped when any corner covering it is a
  seed: running sums along each spatial axis (separable, integer, exact).

Both return the same mask (uint8, 1 where kept) and counts for the same seeds;
``apply_keep`` then computes ``where(keep, x * s, 0)`` in one XLA-fused pass (over the
mask's parts along the batch axis, when each half of the batch was painted on its own).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from ._plan import Dim, Plan, is_static, product

_LANES = 8  # bytes per int64 word
_WORDS = 255  # words summed per group: a byte lane then holds at most 255, no carry
_ROW_ALIGN = _LANES * _WORDS


def _strides(dims: tuple[Dim, ...]) -> list[Dim]:
    strides: list[Dim] = []
    acc: Dim = 1
    for d in reversed(dims):
        strides.append(acc)
        acc = acc * d
    return strides[::-1]


def _count_rows(buffer: tf.Tensor, n_rows: Dim, row_len: Dim) -> tf.Tensor:
    """Sum of each of the first ``n_rows`` rows of ``row_len`` bytes of a flat 0/1 uint8 buffer, int64 ``[R]``.

    ``row_len`` and the buffer's length are multiples of 2040. The whole buffer is summed
    in groups of 2040 bytes and the groups past the rows are dropped afterwards: slicing the
    rows out of the buffer first would copy them.
    """
    words = tf.bitcast(tf.reshape(buffer, [-1, _WORDS, _LANES]), tf.int64)  # [G, 255]
    lanes = tf.bitcast(tf.reduce_sum(words, axis=-1), tf.uint8)  # [G, 8], each lane <= 255
    groups = tf.reduce_sum(tf.cast(lanes, tf.int64), axis=-1)  # [G]
    per_row = tf.cast(row_len // _ROW_ALIGN, tf.int64)
    shape = tf.stack([tf.cast(n_rows, tf.int64), per_row])
    return tf.reduce_sum(tf.reshape(groups[: tf.reduce_prod(shape)], shape), axis=1)


def _buffer_index(
    positions: tf.Tensor, valid: tf.Tensor, plan: Plan, mask_strides: list[Dim], index_dtype: tf.DType, per_sample: bool
) -> tf.Tensor:
    """Flat buffer index of each seed's block corner, from its flat position in the corner grid.

    With ``q_a = pos // grid_stride_a`` (the grid index of axes ``0..a`` together), the
    buffer index is ``sum_a q_a * (mask_stride_a - grid_dim_{a+1} * mask_stride_{a+1})``
    plus ``pos * mask_stride_last``; the coefficient is zero unless axis ``a + 1`` is
    spatial (the mask is wider there) or ``a`` is the padded per-sample row axis. So there
    is one division per such axis, done in float64 (float division is vectorised where
    integer division is not) and made exact by :func:`_floor_divide`.
    """
    grid_dims = plan.grid_dims
    grid_strides = _strides(grid_dims)
    last = len(grid_dims) - 1
    pos = tf.where(valid, positions, tf.zeros_like(positions))
    centred = tf.cast(pos, tf.float64) + 0.5  # see _floor_divide
    base = tf.cast(pos, index_dtype) * tf.cast(mask_strides[last], index_dtype)
    for a in range(last):
        if a + 1 not in plan.spatial_axes and not (a == 0 and per_sample):
            continue
        coefficient = mask_strides[a] - grid_dims[a + 1] * mask_strides[a + 1]
        q = _floor_divide(centred, tf.cast(grid_strides[a], tf.float64))
        base = base + tf.cast(q, index_dtype) * tf.cast(coefficient, index_dtype)
    return base


def _floor_divide(centred: tf.Tensor, d: tf.Tensor) -> tf.Tensor:
    """``floor(n / d)`` from ``centred = n + 0.5`` (float64; integers ``0 <= n < 2**50``, ``d >= 1``).

    ``(n + 0.5) / d`` lies at least ``0.5 / d`` from every integer, far more than the error
    of any float64 division of it, correctly rounded or not. That matters: graph optimisers
    rewrite division by a constant as multiplication by its reciprocal (grappler does, in
    every graph this runs in, eager layer calls included), and a plain ``floor(n / d)`` then
    came out one too low at some exact multiples, painting a seed's block at a wrapped place.
    """
    return tf.floor(centred / d)


def paint(positions: tf.Tensor, valid: tf.Tensor, plan: Plan, *, per_sample: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Keep mask (uint8, 1 where kept, ``plan.mask_dims``) and kept counts (int64, one per sample or one).

    ``positions`` are flat indices into the corner grid (``plan.grid_dims``, row-major);
    only those with ``valid`` set are painted.
    """
    mask_dims = plan.mask_dims
    n_rows: Dim = mask_dims[0] if per_sample else 1
    row_numel = product(mask_dims[1:]) if per_sample else product(mask_dims)
    row_len = ((row_numel + _ROW_ALIGN - 1) // _ROW_ALIGN) * _ROW_ALIGN
    mask_strides = _strides(mask_dims)
    if per_sample:
        mask_strides[0] = row_len
    spatial_strides = [mask_strides[a] for a in plan.spatial_axes]
    scratch = n_rows * row_len
    sizes = [scratch, *spatial_strides, *mask_dims]
    index_dtype = tf.int32 if is_static(sizes) and int(scratch) * 2 < 2**31 - 1 else tf.int64

    def as_index(v: Dim) -> tf.Tensor:
        return tf.cast(v, index_dtype)

    # Offset of each block element from its corner, and the scratch region's size.
    if is_static(plan.block) and is_static(spatial_strides):
        offsets = np.array(list(itertools.product(*(range(int(k)) for k in plan.block))), dtype=np.int64)
        steps = offsets.reshape(-1, len(plan.block)) @ np.array(spatial_strides, dtype=np.int64)
        table = tf.constant(steps, dtype=index_dtype)
        scratch_size: Dim = int(steps.max(initial=0)) + 1
    else:  # a block clamped at run time: its own offsets, so the cost is the clamped block's
        axes = tf.meshgrid(*(tf.range(as_index(k)) for k in plan.block), indexing="ij")
        offsets_t = tf.stack([tf.reshape(axis, [-1]) for axis in axes], axis=1)  # [P, rank], row-major
        table = tf.reduce_sum(offsets_t * tf.stack([as_index(s) for s in spatial_strides])[None, :], axis=1)
        scratch_size = tf.reduce_max(tf.concat([table, tf.zeros([1], index_dtype)], 0)) + 1
    corner = _buffer_index(positions, valid, plan, mask_strides, index_dtype, per_sample)
    base = tf.where(valid, corner, as_index(scratch))
    # Offset-major ([P, seeds]): the broadcast add runs along the long axis (2x faster on CPU
    # than seed-major), and the indices come in P sorted runs.
    target = table[:, None] + base[None, :]
    length = (scratch + scratch_size + _ROW_ALIGN - 1) // _ROW_ALIGN * _ROW_ALIGN  # whole count groups
    buffer = tf.raw_ops.SparseToDense(
        sparse_indices=tf.reshape(target, [-1]),
        output_shape=tf.reshape(as_index(length), [1]),
        sparse_values=tf.constant(0, tf.uint8),
        default_value=tf.constant(1, tf.uint8),
        validate_indices=False,
    )
    kept = _count_rows(buffer, n_rows, row_len) - tf.cast(row_len - row_numel, tf.int64)
    if per_sample:  # one padded row per sample
        rows = tf.reshape(buffer[: as_index(scratch)], tf.stack([as_index(n_rows), as_index(row_len)]))
        keep = rows[:, : as_index(row_numel)]
    else:  # one row: a prefix of the buffer, which TF slices without a copy
        keep = buffer[: as_index(row_numel)]
    return tf.reshape(keep, tf.stack([as_index(d) for d in mask_dims])), kept


def dilate(seeds: tf.Tensor, plan: Plan, *, per_sample: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Keep mask and kept counts from a dense bool seed grid (same results as ``paint``).

    Along each spatial axis, ``covered[p] = sum(seeds[p - k + 1 .. p]) > 0`` with zero
    padding, from a running sum; the axes are separable.
    """
    hit = tf.cast(seeds, tf.int32)
    ndim = len(plan.mask_dims)
    for i, axis in enumerate(plan.spatial_axes):
        k = tf.cast(plan.block[i], tf.int32)
        size = tf.cast(plan.mask_dims[axis], tf.int32)
        pad = [k, tf.maximum(k - 1, 0)]  # an empty axis clamps the block to 0
        sums = tf.cumsum(tf.pad(hit, [[0, 0] if a != axis else pad for a in range(ndim)]), axis=axis)
        upper = tf.gather(sums, tf.range(size) + k, axis=axis)
        lower = tf.gather(sums, tf.range(size), axis=axis)
        hit = tf.cast(upper - lower > 0, tf.int32)
    keep = tf.cast(tf.equal(hit, 0), tf.uint8)
    axes = list(range(1, ndim)) if per_sample else list(range(ndim))
    kept = tf.reshape(tf.reduce_sum(tf.cast(keep, tf.int64), axis=axes), [-1])
    return keep, kept


def scale_factor(x: tf.Tensor, keep: Sequence[tf.Tensor], kept: tf.Tensor, scale: str) -> tf.Tensor:
    """``s`` (float32, float64 for float64 ``x``), broadcastable to ``x``: numel / kept, 0 if nothing is kept.

    ``keep`` is the mask in parts along the batch axis; ``kept`` counts mask elements (one
    count, or one per sample); a mask shared across channels counts once per channel.
    """
    compute_dtype = tf.float64 if x.dtype == tf.float64 else tf.float32
    if scale == "none":
        return tf.ones([], compute_dtype)
    size = tf.size(x, out_type=tf.int64)
    mask_size = tf.add_n([tf.size(part, out_type=tf.int64) for part in keep])
    kept = kept * (size // tf.maximum(mask_size, 1))
    if scale == "batch":
        total = size
        kept = tf.reshape(kept, [])
    else:
        total = tf.reduce_prod(tf.shape(x, out_type=tf.int64)[1:])
        kept = tf.reshape(kept, [-1] + [1] * (len(x.shape) - 1))
    return tf.math.divide_no_nan(tf.cast(total, compute_dtype), tf.cast(kept, compute_dtype))


def _scaled(values: tf.Tensor, keep: tuple[tf.Tensor, ...], s: tf.Tensor) -> tf.Tensor:
    """``where(keep != 0, values * s, 0)`` in ``values``' dtype, computed in ``s``'s precision.

    One XLA function per kind of call (dtypes, ranks, number of mask parts), traced once
    for every shape of that kind (every axis unknown; XLA still compiles each concrete
    shape when it first runs): one function for all would retrace, and TF would warn
    about retracing, whenever a model mixes layer configurations or dtypes.
    """
    key = (values.dtype, values.shape.rank, s.dtype, s.shape.rank, len(keep))
    function = _SCALED.get(key)
    if function is None:
        signature = [
            tf.TensorSpec([None] * values.shape.rank, values.dtype),
            tuple(tf.TensorSpec([None] * values.shape.rank, part.dtype) for part in keep),
            tf.TensorSpec([None] * s.shape.rank, s.dtype),
        ]
        # A partial per kind: TF counts retracing per Python function, so each needs its own.
        fused = functools.partial(_scaled_fused)
        function = _SCALED[key] = tf.function(fused, input_signature=signature, jit_compile=True, autograph=False)
    result = function(values, keep, s)
    result.set_shape(values.shape)  # the signature's unknown axes are known to the caller's trace
    return result


#: The XLA functions of :func:`_scaled`, by kind of call.
_SCALED: dict[tuple[Any, ...], Any] = {}


def _scaled_fused(values: tf.Tensor, keep: tuple[tf.Tensor, ...], s: tf.Tensor) -> tf.Tensor:
    """:func:`_scaled`'s body. XLA fuses it into one pass over ``values`` and the 1-byte mask.

    The mask's parts along the batch axis are concatenated on the fly; TF's own kernels
    would write ``values * s`` and then select from it (twice the memory traffic).
    """
    keep = tf.concat(keep, 0) if len(keep) > 1 else keep[0]
    product = values * s if values.dtype == s.dtype else tf.cast(tf.cast(values, s.dtype) * s, values.dtype)
    return tf.where(tf.not_equal(keep, 0), product, tf.zeros([], values.dtype))


def apply_keep(x: tf.Tensor, keep: Sequence[tf.Tensor], kept: tf.Tensor, scale: str) -> tf.Tensor:
    """``where(keep, x * s, 0)`` in ``x``'s dtype; the gradient is ``keep * s`` (mask and ``s`` are constants).

    ``keep`` is 1 (uint8) where an element is kept, in the mask's shape (it broadcasts
    against ``x`` when channels share a mask), given as consecutive parts along the batch
    axis (one part for a whole mask). Only the 1-byte mask and ``s`` are kept for
    the backward pass. Half-precision inputs are scaled in float32 and rounded once.
    """
    parts = tuple(keep)
    s = tf.stop_gradient(scale_factor(x, parts, kept, scale))

    @tf.custom_gradient
    def forward(values: tf.Tensor) -> tuple[tf.Tensor, object]:
        def grad(upstream: tf.Tensor) -> tf.Tensor:
            return _scaled(upstream, parts, s)

        return _scaled(values, parts, s), grad

    return forward(x)
