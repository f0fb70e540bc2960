"""Stage 2: paint each seed's block into a bool mask, then scale and zero (deterministic).

The mask is built in the input's physical layout (channels first, or channels last when
the input is stored that way), so the output keeps the input's memory format and the
element-wise pass reads both tensors in the same order.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ._geometry import Plan

_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` (N, C, *S) is stored with the channel axis innermost."""
    if x.is_contiguous() or x.dim() < 3:
        return False
    return x.permute(0, *range(2, x.dim()), 1).is_contiguous()


def _physical_order(ndim: int, channels_last: bool) -> tuple[int, ...]:
    return (0, *range(2, ndim), 1) if channels_last else tuple(range(ndim))


def _to_logical(flat: torch.Tensor, shape: tuple[int, ...], channels_last: bool) -> torch.Tensor:
    """View a flat buffer in physical order as a logical (N, C', *S) tensor."""
    order = _physical_order(len(shape), channels_last)
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return flat.view([shape[d] for d in order]).permute(inverse)


def _block_offsets(block: tuple[int, ...], strides: list[int], device: torch.device) -> torch.Tensor:
    """Flat offsets of every element of a (non-empty) ``block`` from its corner, ``prod(block)`` of them."""
    steps = [
        torch.arange(0, k * stride, stride, dtype=torch.int64, device=device)
        for k, stride in zip(block, strides, strict=True)
    ]
    offsets = steps[0]
    for step in steps[1:]:
        offsets = (offsets[:, None] + step[None, :]).reshape(-1)
    return offsets


def _strides(shape: tuple[int, ...], channels_last: bool) -> list[int]:
    """Strides of a dense tensor of logical ``shape`` stored in the given physical order."""
    strides = [0] * len(shape)
    running = 1
    for d in reversed(_physical_order(len(shape), channels_last)):
        strides[d] = running
        running *= shape[d]
    return strides


def eager_cpu(device: torch.device) -> bool:
    """Whether a call runs eagerly on the CPU, where reading a tensor's value is a plain load, not a device sync.

    There the painter drops the empty seed slots and fills one index per block row, and
    the rate and the batch scale are Python floats.
    """
    return device.type == "cpu" and not torch.compiler.is_compiling()


def spare(plan: Plan, channels_last: bool, device: torch.device) -> int:
    """Elements past the mask that absorb empty seed slots: one block's extent.

    Zero on the CPU in eager mode, where :func:`block_rows` cuts the empty slots off, so a
    buffer has exactly the mask's size (the allocator then reuses memory freed by tensors
    of the input's size instead of mapping fresh pages).
    """
    if eager_cpu(device):
        return 0
    strides = _strides(plan.mask_shape, channels_last)
    return 1 + sum((k - 1) * stride for k, stride in zip(plan.block, strides[2:], strict=True))


def block_rows(positions: torch.Tensor, plan: Plan, channels_last: bool) -> torch.Tensor:
    """Flat (physical-order) mask index of the first element of every row of every seed's block.

    A row is the block's run along its last spatial axis (``plan.block[-1]`` elements);
    a block has ``prod(plan.block[:-1])`` rows, listed together, seed by seed, in
    ascending order of their offsets from the corner. ``positions`` are ascending flat corner
    indices; those ``>= plan.corners`` are empty slots. On the CPU in eager mode they are
    cut off (reading their number costs no device sync there); elsewhere they are decoded
    as the corner one past the last sample, so their block lies at ``numel``, in the spare
    elements past the mask (see :func:`spare`) that are never part of any result.
    """
    shape = plan.mask_shape
    strides = _strides(shape, channels_last)
    if eager_cpu(positions.device):
        positions = positions[: int(torch.searchsorted(positions, plan.corners))]
    else:
        positions = torch.clamp(positions, max=plan.corners)
    decode = _channels_last_base if channels_last else _contiguous_base
    base = decode(positions, plan, strides)
    if len(plan.block) == 1:
        return base
    # Seed-major order: a fill then sweeps the buffer once, nearly in ascending order
    # (offset-major order swept it once per row offset, each sweep missing the cache anew).
    offsets = _block_offsets(plan.block[:-1], strides[2:-1], positions.device)
    return (base[:, None] + offsets[None, :]).reshape(-1)


def _contiguous_base(positions: torch.Tensor, plan: Plan, strides: list[int]) -> torch.Tensor:
    """Mask index of each corner when grid and mask are both row-major (N, C', *S).

    Every complete run of the axes after spatial axis ``a`` in the grid skips
    ``(S_a - V_a) * stride_a`` more mask elements: one division per spatial axis.
    """
    shape = plan.mask_shape
    base = positions
    run = 1
    for axis in reversed(range(2, len(shape))):
        run *= plan.grid[axis]
        if shape[axis] != plan.grid[axis]:
            skip = (shape[axis] - plan.grid[axis]) * strides[axis]
            base = torch.add(base, torch.div(positions, run, rounding_mode="floor"), alpha=skip)
    return base


def _channels_last_base(positions: torch.Tensor, plan: Plan, strides: list[int]) -> torch.Tensor:
    """Mask index of each corner of the logical (N, C', *V) grid in a channels-last mask."""
    rest = positions
    base = torch.zeros_like(rest)
    for size, stride in zip(reversed(plan.grid[2:]), reversed(strides[2:]), strict=True):
        quotient = torch.div(rest, size, rounding_mode="floor")
        base = base + (rest - quotient * size) * stride
        rest = quotient
    channels = plan.grid[1]
    sample = torch.div(rest, channels, rounding_mode="floor")
    return base + sample * strides[0] + (rest - sample * channels) * strides[1]


def fill_blocks(buffer: torch.Tensor, rows: torch.Tensor, plan: Plan, channels_last: bool, value: float) -> None:
    """Set every element of the blocks whose rows start at ``rows`` (see :func:`block_rows`) to ``value``.

    ``buffer`` is flat, in physical order, with at least :func:`spare` elements past the
    mask. On the CPU in eager mode one index fills a whole row, through a view of
    ``buffer`` whose rows overlap (every write stores the same value, so the order of the
    writes does not matter); elsewhere every element gets its own index.
    """
    length, stride = plan.block[-1], _strides(plan.mask_shape, channels_last)[-1]
    if eager_cpu(buffer.device):
        runs = buffer.as_strided((buffer.numel() - (length - 1) * stride, length), (1, stride))
        runs.index_fill_(0, rows, value)
        return
    offsets = _block_offsets((length,), [stride], rows.device)
    buffer.index_fill_(0, (offsets[:, None] + rows[None, :]).reshape(-1), value)


# Dropped elements are counted as bytes summed in int64 words, 255 words at a time: each
# byte lane then holds at most 255, so the sum has no carries between lanes.
_LANES = 8
_WORDS = 255
_COUNT_ALIGN = _LANES * _WORDS


def _count_bytes(flags: torch.Tensor) -> torch.Tensor:
    """Number of true elements of a flat bool tensor whose length is a multiple of 2040 (int64, 0-dim)."""
    words = flags.view(torch.uint8).view(torch.int64).view(-1, _WORDS).sum(dim=1)
    return words.view(torch.uint8).sum(dtype=torch.int64)


class PaintedMask(NamedTuple):
    """The dropped mask of a sparse call (bool, ``plan.mask_shape``) and how many elements it drops.

    ``dropped_count`` is a 0-dim int64 tensor; in eager mode it is counted without a
    ``count_nonzero`` pass over the mask.
    """

    dropped: torch.Tensor
    dropped_count: torch.Tensor


def paint_rows(rows: torch.Tensor, plan: Plan, channels_last: bool, scratch: torch.Tensor | None = None) -> PaintedMask:
    """The dropped mask of the block rows from :func:`block_rows`, and its count.

    ``scratch``, when given and large enough, is a flat buffer whose first bytes hold the
    mask (one allocation fewer); the mask is only valid until the buffer is overwritten.
    """
    numel = math.prod(plan.mask_shape)
    end = numel + spare(plan, channels_last, rows.device)
    counted = -(-end // _COUNT_ALIGN) * _COUNT_ALIGN
    if scratch is not None and scratch.numel() * scratch.element_size() >= counted:
        flags = scratch.view(torch.uint8)[:counted].view(torch.bool).zero_()
    else:
        flags = torch.zeros(counted, dtype=torch.bool, device=rows.device)
    fill_blocks(flags, rows, plan, channels_last, True)
    if torch.compiler.is_compiling():
        count = torch.count_nonzero(flags[:numel])
    else:
        count = _count_bytes(flags)
        if end > numel:  # the spare elements hold the empty slots' block: not part of the mask
            count = count - torch.count_nonzero(flags[numel:end])
    return PaintedMask(_to_logical(flags[:numel], plan.mask_shape, channels_last), count)


def paint_sparse(positions: torch.Tensor, plan: Plan, channels_last: bool) -> torch.Tensor:
    """The dropped mask (bool, ``plan.mask_shape``) of seeds given as flat corner indices."""
    return paint_rows(block_rows(positions, plan, channels_last), plan, channels_last).dropped


def paint_dense(seeds: torch.Tensor, plan: Plan, channels_last: bool) -> torch.Tensor:
    """The dropped mask of a bool seed grid ``plan.grid``: a separable sliding maximum."""
    rank = len(plan.block)
    covered = seeds.to(torch.float32)
    for axis, k in enumerate(plan.block):
        if k == 1:
            continue
        pad = [0] * (2 * rank)
        pad[2 * (rank - 1 - axis)] = pad[2 * (rank - 1 - axis) + 1] = k - 1
        kernel = tuple(k if i == axis else 1 for i in range(rank))
        covered = _MAX_POOL[rank](F.pad(covered, pad), kernel, stride=1)
    dropped = covered > 0
    if channels_last:
        order = _physical_order(dropped.dim(), True)
        dropped = _to_logical(dropped.permute(order).reshape(-1), plan.mask_shape, True)
    return dropped


#: ``s``: a tensor, a Python float (``"batch"`` on the CPU in eager mode) or ``None`` (``"none"``).
Scale = torch.Tensor | float | None


def scale_factor(
    dropped: torch.Tensor, scale: str, dtype: torch.dtype, dropped_count: torch.Tensor | None = None
) -> Scale:
    """``s = count / kept`` (0 when nothing is kept) in float32, or float64 for float64 input.

    ``dropped_count``, when known, is the number of true elements of ``dropped`` (used by
    ``"batch"``). ``count`` and ``kept`` are rounded to that dtype and divided, so ``s`` is
    their correctly rounded quotient (``count / kept`` with ``count`` a Python number would
    multiply by the rounded reciprocal: up to an ulp off).

    Shape ``(1, ..., 1)`` for ``"batch"``, ``(N, 1, ..., 1)`` for ``"sample"``, ``None`` for
    ``"none"``. It is never 0-dim, so ``x * s`` computes in ``s``'s precision and rounds
    once to ``x``'s dtype on every device (exact for float16/bfloat16: the float32 product
    of two such numbers rounds to the same value). For ``"batch"`` on the CPU in eager mode
    it is the same value as a Python float (see :func:`exact_quotient`).
    """
    if scale == "none":
        return None
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    trailing = [1] * (dropped.dim() - 1)
    if scale == "batch":
        count = dropped.numel()
        if dropped_count is None:
            dropped_count = torch.count_nonzero(dropped)
        if eager_cpu(dropped.device):
            return exact_quotient(count, count - int(dropped_count), compute)
        kept = (count - dropped_count).to(compute).view(1, *trailing)
    else:
        count = math.prod(dropped.shape[1:])
        kept = (count - torch.count_nonzero(dropped.reshape(dropped.shape[0], -1), dim=1)).to(compute)
        kept = kept.view(-1, *trailing)
    return torch.where(kept > 0, torch.full_like(kept, count) / kept, 0.0)


def exact_quotient(count: int, kept: int, dtype: torch.dtype) -> float:
    """``count / kept`` (0 when ``kept`` is 0) with both rounded to ``dtype`` (float32 or float64), as a Python float.

    The correctly rounded quotient, as :func:`scale_factor` computes with tensors: one
    division in place of half a dozen small ops, for the CPU in eager mode, where reading
    the count costs no device sync. Multiplying by a Python float computes in ``x``'s
    compute precision, which holds this value exactly.
    """
    if kept == 0:
        return 0.0
    if dtype == torch.float64:
        return float(np.float64(count) / np.float64(kept))
    return float(np.float32(count) / np.float32(kept))


def _cpu_scalar(x: torch.Tensor, s: torch.Tensor) -> bool:
    # A 0-dim CPU tensor takes TensorIterator's scalar path: the product is computed in
    # float32 with s unrounded, in one vectorised pass (no float32 temporary).
    return s.numel() == 1 and eager_cpu(x.device)


def scale_by(x: torch.Tensor, s: Scale) -> torch.Tensor:
    """``x * s`` rounded once to ``x``'s dtype."""
    if s is None:
        return x
    if isinstance(s, float):
        return x * s
    if x.dtype == s.dtype or _cpu_scalar(x, s):
        return x * s.reshape(()) if s.numel() == 1 else x * s
    return (x * s).to(x.dtype)


def apply_mask(x: torch.Tensor, dropped: torch.Tensor, s: Scale, inplace: bool) -> torch.Tensor:
    """``where(dropped, 0, x * s)`` in ``x``'s dtype, by differentiable element-wise ops.

    ``dropped`` is (N, C, *S) or (N, 1, *S) (one mask shared by the channels). Autograd
    saves only ``dropped`` (1 byte per element) and ``s``; under ``torch.compile`` the ops
    fuse into one pass. With ``inplace`` the result is copied into ``x``.
    """
    out = torch.where(dropped, 0.0, scale_by(x, s))
    return x.copy_(out) if inplace else out


class ZeroBlocks(torch.autograd.Function):
    """Eager fast path for per-channel masks: paint, count, scale, then zero the blocks.

    The output buffer first holds the painted bool mask in its leading bytes, long enough
    to count the dropped elements; then ``x * s`` overwrites it in one vectorised pass and
    the dropped elements are zeroed by index (one per block row, see :func:`fill_blocks`),
    so the call allocates one tensor of ``x``'s size. The gradient (and the tangent of
    forward-mode AD) is computed the same way. Autograd saves ``s`` (on ``ctx`` when it is a
    Python float) and the block rows when they take at most a byte per element of the mask;
    otherwise the seed positions (8 bytes per seed slot), from which the rows are recomputed.

    ``apply`` returns the output and ``s`` (a :data:`Scale`, not differentiable). The
    context is set up apart from ``forward``, so ``torch.func`` transforms accept it; with
    ``create_graph=True`` the gradient is built from differentiable ops (double backward).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        x: torch.Tensor,
        rows: torch.Tensor,
        positions: torch.Tensor,
        plan: Plan,
        channels_last: bool,
        scale: str,
    ) -> tuple[torch.Tensor, Scale]:
        buffer = _output_buffer(x, plan, channels_last)
        dropped, dropped_count = paint_rows(rows, plan, channels_last, scratch=buffer)
        s = scale_factor(dropped, scale, x.dtype, dropped_count)
        return _scale_and_zero(x, s, rows, plan, channels_last, buffer), s

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, Scale]) -> None:
        _, rows, positions, plan, channels_last, _ = inputs
        s = output[1]
        # The rows when they take at most a byte per element, else the seeds to recompute them.
        ctx.rows_saved = rows.numel() * rows.element_size() <= math.prod(plan.mask_shape)
        scalar = not isinstance(s, torch.Tensor)  # a Python float, or None: kept on ctx
        if not scalar:
            ctx.mark_non_differentiable(s)
        saved = (rows if ctx.rows_saved else positions, *(() if scalar else (s,)))
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*saved)
        ctx.scalar_s = s if scalar else None
        ctx.plan, ctx.channels_last = plan, channels_last

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _: Any) -> tuple[torch.Tensor | None, ...]:
        rows, s = _saved_rows_and_scale(ctx)
        if torch.is_grad_enabled():  # create_graph=True: the gradient must itself be differentiable
            dropped = paint_rows(rows, ctx.plan, ctx.channels_last).dropped
            return apply_mask(grad, dropped, s, inplace=False), None, None, None, None, None
        buffer = _output_buffer(grad, ctx.plan, ctx.channels_last)
        return _scale_and_zero(grad, s, rows, ctx.plan, ctx.channels_last, buffer), None, None, None, None, None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor, *_: Any) -> tuple[torch.Tensor, None]:
        rows, s = _saved_rows_and_scale(ctx)
        buffer = _output_buffer(tangent, ctx.plan, ctx.channels_last)
        return _scale_and_zero(tangent, s, rows, ctx.plan, ctx.channels_last, buffer), None


# Function.apply binds its arguments to forward's signature at every call (for torch.func);
# a signature computed once halves that per-call cost.
ZeroBlocks.forward.__signature__ = inspect.signature(ZeroBlocks.forward)  # type: ignore[attr-defined]


def _saved_rows_and_scale(ctx: Any) -> tuple[torch.Tensor, Scale]:
    """The block rows and ``s`` that :meth:`ZeroBlocks.setup_context` saved."""
    saved, *tensor_s = ctx.saved_tensors
    s = tensor_s[0] if tensor_s else ctx.scalar_s
    rows = saved if ctx.rows_saved else block_rows(saved, ctx.plan, ctx.channels_last)
    return rows, s


_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def _output_buffer(x: torch.Tensor, plan: Plan, channels_last: bool) -> torch.Tensor:
    """A flat buffer of ``x``'s dtype: the mask's elements in physical order, then the spare ones (if any)."""
    numel = math.prod(plan.mask_shape)
    return torch.empty(numel + spare(plan, channels_last, x.device), dtype=x.dtype, device=x.device)


def _scale_and_zero(
    x: torch.Tensor, s: Scale, rows: torch.Tensor, plan: Plan, channels_last: bool, buffer: torch.Tensor
) -> torch.Tensor:
    numel = math.prod(plan.mask_shape)
    out = _to_logical(buffer[:numel], plan.mask_shape, channels_last)
    if s is None:
        out.copy_(x)
    elif isinstance(s, float):
        torch.mul(x, s, out=out)
    else:  # computed in s's precision, rounded once into out's dtype
        torch.mul(x, s.reshape(()) if _cpu_scalar(x, s) else s, out=out)
    fill_blocks(buffer, rows, plan, channels_last, 0.0)
    return _drop_spare(buffer, plan.mask_shape, channels_last, out)


def _drop_spare(buffer: torch.Tensor, shape: tuple[int, ...], channels_last: bool, out: torch.Tensor) -> torch.Tensor:
    """``out`` as a tensor that owns its storage, not a view of ``buffer``.

    A custom Function's output that is a view may not be modified in place afterwards
    (``nn.ReLU(inplace=True)`` after the layer), so the buffer is shrunk in place to the
    output's shape and strides; its spare elements stay unused in the same allocation.
    """
    if not channels_last:
        return buffer.resize_(shape)
    memory_format = _CHANNELS_LAST.get(len(shape))
    if memory_format is None:  # a channels-last 3D (N, C, L) tensor has no memory format of its own
        return out.clone(memory_format=torch.preserve_format)
    return buffer.resize_(shape, memory_format=memory_format)
