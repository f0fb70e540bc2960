"""The static plan of one DropBlock call: geometry, seed rate and sampler capacity.

Shapes known while tracing (always under XLA, and whenever the input has a static
shape) go through ``dropblock_core`` as Python ints, so the capacity is a constant and
the choice between the sparse and the dense sampler is made in Python. Dimensions unknown
while tracing (a ``None`` batch or ``Input((None, None, C))``) are read with
``tf.shape`` and the same formulas are evaluated with TF scalar ops; the choice of sampler
then becomes a ``tf.cond``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import tensorflow as tf

from ._core import clamp_block, gamma, gamma_factor, seed_capacity, sparse_is_cheaper, valid_corners
from ._core.geometry import log_failure_bound

#: A dimension: a Python int when known while tracing, else an int64 scalar tensor.
Dim: TypeAlias = "int | tf.Tensor"


def as_float64(value: float | tf.Tensor) -> tf.Tensor:
    """A float64 tensor; Python numbers are converted directly (never through float32)."""
    if isinstance(value, tf.Tensor | tf.Variable):
        return tf.cast(value, tf.float64)
    return tf.constant(value, tf.float64)


def dims_of(x: tf.Tensor) -> list[Dim]:
    """The dimensions of ``x``: static ones as ints, the others from ``tf.shape``."""
    static = x.shape.as_list()
    if all(d is not None for d in static):
        return [int(d) for d in static]
    dynamic = tf.shape(x, out_type=tf.int64)
    return [int(d) if d is not None else dynamic[i] for i, d in enumerate(static)]


def is_static(values: Sequence[Dim]) -> bool:
    """Whether every value is a Python int."""
    return all(isinstance(v, int) for v in values)


def product(values: Sequence[Dim]) -> Dim:
    """The product of ints and int64 scalars (an int when all are ints)."""
    result: Dim = 1
    for v in values:
        result = result * v
    return result


def tf_gamma(rate: float | tf.Tensor, factor: float | tf.Tensor) -> tf.Tensor:
    """``gamma`` in float64 for a rate that may be a tensor: 1 at rate 1, else ``min(1, rate * factor)``."""
    rate = as_float64(rate)
    one = tf.constant(1.0, tf.float64)
    return tf.where(rate >= 1.0, one, tf.minimum(one, rate * as_float64(factor)))


def tf_seed_capacity(corners: tf.Tensor, gamma_max: float | tf.Tensor) -> tf.Tensor:
    """``dropblock_core.seed_capacity`` for a corner count (or seed rate) known only at run time.

    The same float64 expression as the core function (Bernstein's bound at 2**-64),
    evaluated with TF ops; ``tests/test_plan.py`` checks that both agree.
    """
    corners = tf.cast(corners, tf.int64)
    p = tf.minimum(tf.constant(1.0, tf.float64), as_float64(gamma_max))
    mean = tf.cast(corners, tf.float64) * p
    var = mean * (1.0 - p)
    log_failure = log_failure_bound()
    t = log_failure / 3 + tf.sqrt(log_failure**2 / 9 + 2 * log_failure * var)
    capacity = tf.minimum(corners, tf.cast(tf.math.ceil(mean + t), tf.int64))
    return tf.where(p > 0.0, capacity, tf.zeros_like(capacity))


@dataclass(frozen=True)
class Plan:
    """Everything a call needs that does not depend on random numbers.

    ``block`` is the clamped block (ints, or int64 tensors when the map size is dynamic).
    ``mask_dims`` is the shape of the keep mask and ``grid_dims`` that of the corner grid,
    both in the input's layout with ``C'`` channels. ``sparse`` is a bool, or a bool tensor
    when the shapes are dynamic. ``parts`` are the plans of the batch's two halves (see
    :func:`batch_parts`), empty when the batch is not split.
    """

    mask_dims: tuple[Dim, ...]
    grid_dims: tuple[Dim, ...]
    spatial_axes: tuple[int, ...]
    block: tuple[Dim, ...]
    factor: float | tf.Tensor
    capacity: Dim
    sparse: bool | tf.Tensor
    parts: tuple[Plan, ...] = ()


def batch_parts(batch: Dim) -> tuple[Dim, ...]:
    """Sample counts of the parts the sparse sampler draws and paints independently.

    Two halves, ``ceil(N / 2)`` and ``floor(N / 2)`` samples, so ``tf.function``'s executor
    runs the two chains of small ops (sampler, indices, painter) on two threads. The split
    depends only on ``N``, never on the machine, and a batch unknown while tracing is split
    by the same rule (its second half may be empty), so static and dynamic shapes draw the
    same seeds. A batch of fewer than 2 samples known while tracing is not split.

    >>> batch_parts(5), batch_parts(1)
    ((3, 2), (1,))
    """
    if isinstance(batch, int) and batch < 2:
        return (batch,)
    return ((batch + 1) // 2, batch // 2)


def make_plan(
    dims: Sequence[Dim],
    block_size: Sequence[int],
    *,
    channels_last: bool,
    per_channel: bool,
    max_rate: float | tf.Tensor,
    split: bool = True,
) -> Plan:
    """Build the plan for an input of ``dims`` whose rate never exceeds ``max_rate``.

    With ``split`` (the default), ``parts`` holds the plans of the batch's halves. A
    ``max_rate`` tensor makes the capacity and the choice of sampler tensors, as dynamic
    shapes do (the same values).
    """
    rank = len(dims) - 2
    spatial_axes = tuple(range(1, rank + 1)) if channels_last else tuple(range(2, rank + 2))
    channel_axis = len(dims) - 1 if channels_last else 1
    mask_dims = list(dims)
    if not per_channel:
        mask_dims[channel_axis] = 1
    spatial = [dims[a] for a in spatial_axes]
    if is_static(spatial):
        static_spatial = [int(s) for s in spatial]
        block: tuple[Dim, ...] = clamp_block(static_spatial, block_size)
        corners_per_axis: tuple[Dim, ...] = valid_corners(static_spatial, block_size)
        factor: float | tf.Tensor = gamma_factor(static_spatial, block_size)
        gamma_max: float | tf.Tensor = (
            tf_gamma(max_rate, factor)
            if isinstance(max_rate, tf.Tensor)
            else gamma(max_rate, static_spatial, block_size)
        )
    else:
        spatial_t = [tf.cast(s, tf.int64) for s in spatial]
        # A block beyond int64 covers any map, as the int64 maximum does.
        block = tuple(
            tf.minimum(tf.constant(min(k, 2**63 - 1), tf.int64), s) for k, s in zip(block_size, spatial_t, strict=True)
        )
        corners_per_axis = tuple(s - k + 1 for s, k in zip(spatial_t, block, strict=True))
        n_corners = tf.cast(product(corners_per_axis), tf.float64)
        n_spatial = tf.cast(product(spatial_t), tf.float64)
        factor = tf.math.divide_no_nan(n_spatial, tf.cast(product(block), tf.float64) * n_corners)
        gamma_max = tf_gamma(max_rate, factor)
    grid_dims = list(mask_dims)
    for a, v in zip(spatial_axes, corners_per_axis, strict=True):
        grid_dims[a] = v
    total = product(grid_dims)
    numel = product(mask_dims)
    if isinstance(total, int) and isinstance(numel, int) and is_static(block) and isinstance(gamma_max, float):
        capacity: Dim = seed_capacity(total, gamma_max)
        sparse: bool | tf.Tensor = sparse_is_cheaper(capacity, [int(k) for k in block], numel)
    else:
        capacity = tf_seed_capacity(tf.cast(total, tf.int64), gamma_max)
        sparse = sparse_is_cheaper(capacity, [tf.cast(k, tf.int64) for k in block], tf.cast(numel, tf.int64))
    sizes = batch_parts(dims[0]) if split else ()
    parts = (
        tuple(
            make_plan(
                [size, *dims[1:]],
                block_size,
                channels_last=channels_last,
                per_channel=per_channel,
                max_rate=max_rate,
                split=False,
            )
            for size in sizes
        )
        if len(sizes) > 1
        else ()
    )
    return Plan(
        mask_dims=tuple(mask_dims),
        grid_dims=tuple(grid_dims),
        spatial_axes=spatial_axes,
        block=tuple(block),
        factor=factor,
        capacity=capacity,
        sparse=sparse,
        parts=parts,
    )


__all__ = [
    "Dim",
    "Plan",
    "as_float64",
    "batch_parts",
    "dims_of",
    "is_static",
    "make_plan",
    "product",
    "tf_gamma",
    "tf_seed_capacity",
]
