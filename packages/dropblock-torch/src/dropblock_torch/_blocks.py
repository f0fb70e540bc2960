"""Stage 2: paint each seed's block into a bool mask, then scale and zero (deterministic).

The mask is built in the input's physical layout (channels first, or channels last when
the input is stored that way), so the output keeps the input's memory format and the
element-wise pass reads both tensors in the same order.
"""

from __future__ import annotations

import math
from typing import Any

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


def _block_offsets(plan: Plan, strides: list[int], device: torch.device) -> torch.Tensor:
    """Flat offsets of every element of a block from its corner, ``prod(k)`` of them."""
    offsets = torch.zeros(1, dtype=torch.int64, device=device)
    for k, stride in zip(plan.block, strides[2:], strict=True):
        step = torch.arange(k, dtype=torch.int64, device=device) * stride
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


def spare(plan: Plan, channels_last: bool) -> int:
    """Elements past the mask that absorb empty seed slots: one block's extent."""
    strides = _strides(plan.mask_shape, channels_last)
    return 1 + sum((k - 1) * stride for k, stride in zip(plan.block, strides[2:], strict=True))


def block_index(positions: torch.Tensor, plan: Plan, channels_last: bool) -> torch.Tensor:
    """Flat (physical-order) mask indices of every element of every seed's block.

    ``positions`` are flat corner indices; those ``>= plan.corners`` are empty slots, whose
    block is placed at ``numel``, in the spare elements past the mask (see :func:`spare`)
    that are never part of any result.
    """
    shape = plan.mask_shape
    strides = _strides(shape, channels_last)
    valid = positions < plan.corners
    rest = torch.where(valid, positions, 0)
    base = torch.zeros_like(rest)
    # Integer division is the costly op here: one per spatial axis (the corner grid and the
    # mask differ there), and one for (sample, channel) only when they are not adjacent.
    for size, stride in zip(reversed(plan.grid[2:]), reversed(strides[2:]), strict=True):
        quotient = torch.div(rest, size, rounding_mode="floor")
        base = base + (rest - quotient * size) * stride
        rest = quotient
    channels = plan.grid[1]
    if strides[0] == channels * strides[1]:  # rest = n * C' + c is already the (n, c) offset
        base = base + rest * strides[1]
    else:
        sample = torch.div(rest, channels, rounding_mode="floor")
        base = base + sample * strides[0] + (rest - sample * channels) * strides[1]
    base = torch.where(valid, base, math.prod(shape))
    return (base[:, None] + _block_offsets(plan, strides, positions.device)[None, :]).reshape(-1)


def paint_sparse(positions: torch.Tensor, plan: Plan, channels_last: bool) -> torch.Tensor:
    """The dropped mask (bool, ``plan.mask_shape``) of seeds given as flat corner indices."""
    return paint_index(block_index(positions, plan, channels_last), plan, channels_last)


def paint_index(index: torch.Tensor, plan: Plan, channels_last: bool) -> torch.Tensor:
    """The dropped mask of the flat indices from :func:`block_index`."""
    numel = math.prod(plan.mask_shape)
    dropped = torch.zeros(numel + spare(plan, channels_last), dtype=torch.bool, device=index.device)
    dropped.index_fill_(0, index, True)
    return _to_logical(dropped[:numel], plan.mask_shape, channels_last)


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


def scale_factor(dropped: torch.Tensor, scale: str, dtype: torch.dtype) -> torch.Tensor | None:
    """``s = count / kept`` (0 when nothing is kept) in float32, or float64 for float64 input.

    Shape ``(1, ..., 1)`` for ``"batch"``, ``(N, 1, ..., 1)`` for ``"sample"``, ``None`` for
    ``"none"``. It is never 0-dim, so ``x * s`` computes in ``s``'s precision and rounds
    once to ``x``'s dtype on every device (exact for float16/bfloat16: the float32 product
    of two such numbers rounds to the same value).
    """
    if scale == "none":
        return None
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    trailing = [1] * (dropped.dim() - 1)
    if scale == "batch":
        count = dropped.numel()
        kept = (count - torch.count_nonzero(dropped)).to(compute).view(1, *trailing)
    else:
        count = math.prod(dropped.shape[1:])
        kept = (count - torch.count_nonzero(dropped.reshape(dropped.shape[0], -1), dim=1)).to(compute)
        kept = kept.view(-1, *trailing)
    return torch.where(kept > 0, count / kept, 0.0)


def _cpu_scalar(x: torch.Tensor, s: torch.Tensor) -> bool:
    # A 0-dim CPU tensor takes TensorIterator's scalar path: the product is computed in
    # float32 with s unrounded, in one vectorised pass (no float32 temporary).
    return s.numel() == 1 and x.device.type == "cpu" and not torch.compiler.is_compiling()


def scale_by(x: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
    """``x * s`` rounded once to ``x``'s dtype."""
    if s is None:
        return x
    if x.dtype == s.dtype or _cpu_scalar(x, s):
        return x * s.reshape(()) if s.numel() == 1 else x * s
    return (x * s).to(x.dtype)


def apply_mask(x: torch.Tensor, dropped: torch.Tensor, s: torch.Tensor | None, inplace: bool) -> torch.Tensor:
    """``where(dropped, 0, x * s)`` in ``x``'s dtype, by differentiable element-wise ops.

    ``dropped`` is (N, C, *S) or (N, 1, *S) (one mask shared by the channels). Autograd
    saves only ``dropped`` (1 byte per element) and ``s``; under ``torch.compile`` the ops
    fuse into one pass. With ``inplace`` the result is copied into ``x``.
    """
    out = torch.where(dropped, 0.0, scale_by(x, s))
    return x.copy_(out) if inplace else out


class ZeroBlocks(torch.autograd.Function):
    """Eager fast path of :func:`apply_mask` for per-channel masks: scale, then zero the blocks.

    ``x * s`` is one vectorised pass written into a buffer with spare elements, and the
    dropped elements are zeroed by index (about ``gamma * corners * prod(k)`` writes),
    forward and backward alike. Backward recomputes the indices from the seed positions,
    so only those (8 bytes per seed slot) and ``s`` are saved.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        s: torch.Tensor | None,
        index: torch.Tensor,
        positions: torch.Tensor,
        plan: Plan,
        channels_last: bool,
    ) -> torch.Tensor:
        ctx.save_for_backward(positions, s)
        ctx.plan, ctx.channels_last = plan, channels_last
        return _scale_and_zero(x, s, index, plan, channels_last)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        positions, s = ctx.saved_tensors
        index = block_index(positions, ctx.plan, ctx.channels_last)
        return _scale_and_zero(grad, s, index, ctx.plan, ctx.channels_last), None, None, None, None, None


_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def _scale_and_zero(
    x: torch.Tensor, s: torch.Tensor | None, index: torch.Tensor, plan: Plan, channels_last: bool
) -> torch.Tensor:
    numel = math.prod(plan.mask_shape)
    buffer = torch.empty(numel + spare(plan, channels_last), dtype=x.dtype, device=x.device)
    out = _to_logical(buffer[:numel], plan.mask_shape, channels_last)
    if s is None:
        out.copy_(x)
    else:  # computed in s's precision, rounded once into out's dtype
        torch.mul(x, s.reshape(()) if _cpu_scalar(x, s) else s, out=out)
    buffer.index_fill_(0, index, 0.0)
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
