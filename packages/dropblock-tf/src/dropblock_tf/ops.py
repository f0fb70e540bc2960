"""The stateless functional DropBlock for plain TensorFlow.

``drop_block`` is what the Keras layers call after drawing a seed from their
``keras.random.SeedGenerator``; it only uses TF ops, so it runs eagerly, in
``tf.function`` (also ``jit_compile=True``), in ``tf.data`` pipelines and in SavedModels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import keras
import numpy as np
import tensorflow as tf

from . import _masking, _sampling
from ._core import (
    DataFormat,
    ScaleMode,
    at_most,
    invalid_dtype,
    invalid_value,
    normalize_block_size,
    validate_data_format,
    validate_flag,
    validate_per_channel,
    validate_rate,
    validate_scale,
)
from ._plan import Plan, as_float64, dims_of, make_plan, tf_gamma

FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)
_LAYOUT = {
    1: ("(N, L, C)", "(N, C, L)"),
    2: ("(N, H, W, C)", "(N, C, H, W)"),
    3: ("(N, D, H, W, C)", "(N, C, D, H, W)"),
}


def check_input(x: Any, rank: int | None, data_format: str) -> int:
    """Raise ``TypeError`` for a non-float or non-dense input, ``ValueError`` for a wrong rank; return the spatial rank.

    ``x`` is a tensor or a symbolic ``keras.KerasTensor`` (a model being built).
    """
    if isinstance(x, tf.SparseTensor | tf.RaggedTensor) or getattr(x, "sparse", False) or getattr(x, "ragged", False):
        kind = "RaggedTensor" if isinstance(x, tf.RaggedTensor) or getattr(x, "ragged", False) else "SparseTensor"
        raise TypeError(f"DropBlock expects a dense tensor, got a {kind}; convert it first.")
    dtype = tf.as_dtype(x.dtype)
    if dtype not in FLOAT_DTYPES:
        raise invalid_dtype("DropBlock", dtype.name)
    shape = tf.TensorShape(x.shape)
    ndim = shape.rank
    if ndim is None:
        expected = "a 3D, 4D or 5D input" if rank is None else f"a {rank + 2}D input"
        raise ValueError(f"DropBlock expects {expected}, got an input of unknown rank.")
    if rank is None:
        if ndim not in (3, 4, 5):
            raise ValueError(f"drop_block expects a 3D, 4D or 5D input (1, 2 or 3 spatial dims), got shape {shape}.")
        return ndim - 2
    if ndim != rank + 2:
        layout = _LAYOUT[rank][0 if data_format == "channels_last" else 1]
        raise ValueError(
            f"DropBlock{rank}D expects a {rank + 2}D input {layout} ({data_format}), got shape {shape} ({ndim}D)."
        )
    return rank


_F = TypeVar("_F", bound=Callable[..., Any])


def _do_not_convert(function: _F) -> _F:
    """``tf.autograph.experimental.do_not_convert``, keeping the signature visible to type checkers.

    AutoGraph would otherwise rewrite the Python control flow on static settings into
    graph ops when a caller's ``tf.function`` traces it.
    """
    return cast(_F, tf.autograph.experimental.do_not_convert(function))


def _python_bool(value: Any) -> Any:
    """A NumPy bool as a Python bool; anything else unchanged (for validation to judge)."""
    return bool(value) if isinstance(value, np.bool_) else value


def resolve_training(training: Any) -> bool | tf.Tensor:
    """The ``training`` flag as a Python bool, or a scalar bool tensor when only the run knows it.

    ``None`` (Keras's default) is inference; a tensor whose value is known while tracing
    counts as that bool. Strings, ints and lists are refused: ``training="False"`` would
    otherwise train.
    """
    if isinstance(training, tf.Tensor | tf.Variable) and training.dtype == tf.bool and training.shape.rank == 0:
        static = tf.get_static_value(training)
        return training if static is None else bool(static)
    if training is None:
        return False
    return validate_flag(_python_bool(training), "training", "True, False, None or a scalar bool tensor")


def when_training(training: tf.Tensor, x: tf.Tensor, drop: Callable[[], tf.Tensor]) -> tf.Tensor:
    """``drop()`` or ``x``, picked at run time by a tensor ``training`` flag (as Keras passes in a graph)."""
    return tf.cond(tf.cast(training, tf.bool), drop, lambda: tf.identity(x))


def resolve_data_format(data_format: str | None) -> DataFormat:
    """``data_format``, validated; ``None`` is Keras's ``image_data_format()``, as in ``keras.ops``."""
    return validate_data_format(keras.config.image_data_format() if data_format is None else data_format)


def as_stateless_seed(seed: Any) -> tf.Tensor:
    """A ``tf.random`` stateless seed: an int tensor of shape ``[2]`` (int64 values folded into int32 as Keras does)."""
    given = seed
    try:
        seed = tf.convert_to_tensor(seed)
    except (TypeError, ValueError) as error:  # None, strings of mixed types, ...
        raise _invalid_seed(given) from error
    if not seed.dtype.is_integer or seed.shape.rank != 1 or seed.shape[0] not in (2, None):
        raise _invalid_seed(given)
    if seed.dtype != tf.int32:
        seed = tf.cast(tf.math.floormod(tf.cast(seed, tf.int64), tf.int32.max - 1), tf.int32)
    return seed


def _invalid_seed(seed: Any) -> ValueError:
    return invalid_value("seed", "a shape [2] integer tensor", seed)


def _replica_seed(seed: tf.Tensor) -> tf.Tensor:
    """Fold the replica id into the seed under a multi-replica ``tf.distribute`` strategy."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return seed
    return tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)


def _sparse_draws(plan: Plan, gamma: tf.Tensor, seed: tf.Tensor) -> list[tuple[Plan, tf.Tensor, tf.Tensor]]:
    """Each part of the batch (``plan.parts``, or the whole batch) with its seed positions and valid slots.

    Part ``j`` draws from ``seed`` with ``j`` folded in; the parts are independent, so
    their seeds together are i.i.d. Bernoulli(gamma) over the whole corner grid.
    """
    draws = []
    for j, part in enumerate(plan.parts or (plan,)):
        part_seed = tf.random.experimental.stateless_fold_in(seed, j)
        positions, valid = _sampling.sample_sparse(part_seed, gamma, part.grid_dims, part.capacity)
        draws.append((part, positions, valid))
    return draws


def sample_keep(
    plan: Plan, rate: tf.Tensor | float, seed: tf.Tensor, *, per_sample: bool
) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
    """Stage 1 (draw the seeds) and the painting of stage 2: keep mask and kept counts for one call.

    The mask comes in parts along the batch axis (see ``_masking.apply_keep``): the sparse
    method paints each part of ``plan.parts`` into its own buffer.
    """
    gamma = tf_gamma(rate, plan.factor)

    def sparse() -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
        painted = [
            _masking.paint(positions, valid, part, per_sample=per_sample)
            for part, positions, valid in _sparse_draws(plan, gamma, seed)
        ]
        counts = [kept for _, kept in painted]
        return tuple(keep for keep, _ in painted), tf.concat(counts, 0) if per_sample else tf.add_n(counts)

    def dense() -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
        keep, kept = _masking.dilate(_sampling.sample_dense(seed, gamma, plan.grid_dims), plan, per_sample=per_sample)
        return (keep,), kept

    def sparse_whole() -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:  # tf.cond's branches must match
        keeps, kept = sparse()
        return (tf.concat(keeps, 0),), kept

    if isinstance(plan.sparse, bool):
        return sparse() if plan.sparse else dense()
    return tf.cond(plan.sparse, sparse_whole, dense)


def keep_for(
    x: tf.Tensor,
    rate: tf.Tensor | float,
    seed: tf.Tensor,
    max_rate: tf.Tensor | float,
    *,
    block: tuple[int, ...],
    per_sample: bool,
    **flags: Any,
) -> tuple[tuple[tf.Tensor, ...], tf.Tensor]:
    """``sample_keep`` for the input ``x`` (only its shape is read); ``flags``: ``make_plan``'s keywords.

    A rate tensor (a layer's rate in force) is clipped to ``[0, max_rate]`` in float64,
    NaN counting as 0 (no validator sees a value assigned to ``current_rate``): the
    sampler is sized for ``max_rate``, and a higher rate would run out of seed slots part
    way through the grid. A float32 rate in force rounds above ``max_rate`` (0.1 does; a
    rate within 3e-8 of 1 rounds to 1, which would drop everything).
    """
    if isinstance(rate, tf.Tensor):  # in float64: a float32 rate may round above max_rate (to 1.0 just below 1)
        rate = as_float64(rate)
        rate = tf.where(tf.math.is_nan(rate), tf.constant(0.0, tf.float64), rate)
        rate = tf.clip_by_value(rate, tf.constant(0.0, tf.float64), as_float64(max_rate))
    plan = make_plan(dims_of(x), block, max_rate=max_rate, **flags)
    return sample_keep(plan, rate, seed, per_sample=per_sample)


#: ``keep_for`` as one graph per configuration and map size, for eager calls (see :func:`eager_keep_for`).
_EAGER_GRAPHS: dict[tuple[Any, ...], Any] = {}


def eager_keep_for(
    block: tuple[int, ...],
    *,
    channels_last: bool,
    per_channel: bool,
    per_sample: bool,
    dtype: tf.DType,
    spatial: tuple[int, ...],
) -> Any:
    """``keep_for`` as one ``tf.function`` for eager calls of one configuration on maps of one size.

    Its few dozen small ops then run in one call (the batch's two halves on two threads)
    instead of one Python dispatch each; the ops, and so the seeds, are the same. It is
    traced once, for any batch size and channel count (those axes are unknown, as the
    batch is under ``fit``), and the rates come as tensors (``max_rate`` too): neither
    retraces it. The map size stays known, so the block is clamped while tracing (a
    block larger than the map costs what the clamped block costs). One function per
    configuration and map size, each traced once, keeps TF from warning about retracing
    when a model holds several differently configured layers or sees several map sizes.
    """
    key = (block, channels_last, per_channel, per_sample, dtype, spatial)
    graph = _EAGER_GRAPHS.get(key)
    if graph is None:
        # A partial per key: TF counts retracing per Python function, so each needs its own.
        keep = functools.partial(
            keep_for,  # max_rate is positional: an input signature covers positional arguments only
            block=block,
            channels_last=channels_last,
            per_channel=per_channel,
            per_sample=per_sample,
        )
        shape = [None, *spatial, None] if channels_last else [None, None, *spatial]
        signature = [
            tf.TensorSpec(shape, dtype),
            tf.TensorSpec([], tf.float64),
            tf.TensorSpec([2], tf.int32),
            tf.TensorSpec([], tf.float64),
        ]
        graph = _EAGER_GRAPHS[key] = tf.function(keep, input_signature=signature, autograph=False)
    return graph


def sample_seed_grid(plan: Plan, rate: tf.Tensor | float, seed: tf.Tensor) -> tf.Tensor:
    """The seeds ``sample_keep`` draws for the same arguments, as a bool corner grid (for tests)."""
    gamma = tf_gamma(rate, plan.factor)
    if plan.sparse is True:
        grids = []
        for part, positions, valid in _sparse_draws(plan, gamma, seed):
            shape = tf.stack([tf.cast(d, tf.int64) for d in part.grid_dims])
            hits = tf.boolean_mask(positions, valid)[:, None]
            flat = tf.scatter_nd(hits, tf.ones(tf.shape(hits)[:1], tf.int32), tf.reshape(tf.reduce_prod(shape), [1]))
            grids.append(tf.reshape(flat > 0, shape))
        return tf.concat(grids, 0)
    if plan.sparse is False:
        return _sampling.sample_dense(seed, gamma, plan.grid_dims)
    raise ValueError("sample_seed_grid needs a static plan")


@_do_not_convert
def drop_block_nd(
    x: tf.Tensor,
    rate: tf.Tensor | float,
    *,
    max_rate: float,
    seed: tf.Tensor,
    block_size: Sequence[int],
    data_format: str,
    per_channel: bool,
    scale: str,
) -> tf.Tensor:
    """Training-mode DropBlock on a checked input; ``rate`` may be a tensor (clipped to ``max_rate``).

    An eager call draws the mask through one traced graph per configuration
    (:func:`eager_keep_for`), which takes both rates as tensors: a new rate (the op's, or
    a layer's ``rate``) does not retrace it. A traced call keeps ``max_rate`` a static number.
    """
    if max_rate == 0.0 or x.shape.num_elements() == 0:
        return x
    seed = _replica_seed(as_stateless_seed(seed))
    flags = {
        "channels_last": data_format == "channels_last",
        "per_channel": per_channel,
        "per_sample": scale == "sample",
    }
    if tf.executing_eagerly():
        spatial = tuple(x.shape[1:-1] if flags["channels_last"] else x.shape[2:])
        graph = eager_keep_for(tuple(block_size), dtype=x.dtype, spatial=spatial, **flags)
        keep, kept = graph(x, as_float64(rate), seed, as_float64(max_rate))
    else:
        keep, kept = keep_for(x, rate, seed, block=tuple(block_size), max_rate=max_rate, **flags)
    return _masking.apply_keep(x, keep, kept, scale)


def _rate_and_bound(rate: Any, max_rate: float | None) -> tuple[float | tf.Tensor, float]:
    """The op's rate (a float, or a scalar float tensor) and the static bound that sizes the sampler."""
    bound = None if max_rate is None else validate_rate(max_rate, "max_rate")
    if isinstance(rate, tf.Tensor | tf.Variable):
        if not rate.dtype.is_floating or rate.shape.rank != 0:
            raise invalid_value("rate", "a real number in [0, 1] or a scalar float tensor", rate)
        if bound is None:
            raise invalid_value(
                "max_rate", "a real number in [0, 1] when `rate` is a tensor (it sizes the sampler)", None
            )
        return tf.convert_to_tensor(rate), bound  # a variable is read once, then clipped like a tensor
    number = validate_rate(rate)
    if bound is None:
        return number, number
    return at_most(number, bound, "rate", f"at most max_rate ({bound})"), bound


@_do_not_convert
def drop_block(
    x: Any,
    rate: float,
    block_size: int | Sequence[int],
    *,
    seed: Any,
    training: bool | tf.Tensor = True,
    data_format: DataFormat | None = None,
    per_channel: bool = True,
    scale: ScaleMode = "batch",
    max_rate: float | None = None,
) -> tf.Tensor:
    """Stateless DropBlock (Ghiasi et al., 2018) on a 1D, 2D or 3D feature map.

    Zeroes contiguous ``block_size`` blocks whose corners are i.i.d. Bernoulli(gamma) over
    the corners whose block fits in the map, with ``gamma`` chosen so that about ``rate`` of
    the units are dropped, then rescales the kept units.

    Args:
        x: float tensor ``(N, *S, C)`` (``channels_last``) or ``(N, C, *S)``, with its batch
            axis: a single ``(H, W, C)`` image (say, in a per-example ``tf.data`` map) reads
            as a batch of 1D maps. Call it on the batch, or give a tuple ``block_size``,
            which fixes the rank and rejects such an input.
        rate: the drop rate in [0, 1]: about the fraction of units dropped at small rates;
            overlapping blocks drop less at large ones, and 1 drops everything. A Python
            number, or a scalar float tensor or ``tf.Variable`` together with ``max_rate``:
            a new Python value retraces an enclosing ``tf.function`` (as any Python argument
            does), a tensor does not, so a schedule can change it from step to step.
        block_size: int or tuple of one int per spatial dim; clamped to the map at call time.
        seed: a ``tf.random`` stateless seed, shape ``[2]`` ints. The same seed gives the same output.
        training: ``True``; ``False`` or ``None`` (inference, as Keras passes to a layer's
            ``call``: ``x`` is returned unchanged); or a scalar bool tensor, which picks
            between the two at run time (as a layer's ``training``).
        data_format: ``"channels_last"`` or ``"channels_first"``; ``None`` (the default)
            is ``keras.config.image_data_format()``, like the layers and ``keras.ops``.
        per_channel: one mask per (sample, channel) (the paper's Algorithm 1); False shares
            one mask per sample across channels.
        scale: ``"batch"`` (numel / kept over the whole tensor), ``"sample"`` (per sample) or
            ``"none"``.
        max_rate: the largest rate the call can see, a Python number in [0, 1]; required
            with a tensor ``rate``, which is clipped to ``[0, max_rate]`` (NaN counting as
            0). It sizes the sampler, so the masks a seed gives depend on it: pass the same
            ``max_rate`` to get the same masks for a rate given as a number or a tensor.
            Defaults to a number ``rate`` itself.

    Under a multi-replica ``tf.distribute`` strategy the replica id is folded into
    ``seed``, so replicas draw independent masks, and ``"batch"`` counts the replica's
    local batch.

    Returns:
        A tensor of ``x``'s shape and dtype.

    Example:

    >>> import tensorflow as tf
    >>> from dropblock_tf import drop_block
    >>> x = tf.ones((2, 8, 8, 3))
    >>> y = drop_block(x, 0.2, 3, seed=(1, 2))
    >>> bool(tf.reduce_all(y == drop_block(x, 0.2, 3, seed=(1, 2))))
    True
    >>> drop_block(x, 0.2, 3, seed=(1, 2), training=False) is x
    True
    """
    rate, bound = _rate_and_bound(rate, max_rate)
    data_format = resolve_data_format(data_format)
    per_channel = validate_per_channel(per_channel)
    scale = validate_scale(scale)
    seed = as_stateless_seed(seed)
    x = tf.convert_to_tensor(x)
    rank = check_input(x, None, data_format)
    block = normalize_block_size(block_size, rank)

    def dropped() -> tf.Tensor:
        if isinstance(rate, float) and rate == 1.0:  # every corner is a seed: kept = 0, s = 0 (never NaN)
            return _masking.apply_keep(x, (tf.zeros_like(x, dtype=tf.uint8),), tf.zeros([1], tf.int64), scale)
        return drop_block_nd(
            x,
            rate,
            max_rate=bound,
            seed=seed,
            block_size=block,
            data_format=data_format,
            per_channel=per_channel,
            scale=scale,
        )

    training = resolve_training(training)
    if training is False or bound == 0.0 or (isinstance(rate, float) and rate == 0.0):
        return x
    if training is True:
        return dropped()
    return when_training(training, x, dropped)
