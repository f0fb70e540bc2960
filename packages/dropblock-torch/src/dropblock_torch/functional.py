"""Functional DropBlock: ``drop_block1d``, ``drop_block2d`` and ``drop_block3d``.

DropBlock (Ghiasi, Lin and Le, NeurIPS 2018, https://arxiv.org/abs/1810.12890) zeroes
contiguous blocks of each feature map in training and rescales what is kept.

Like :func:`torch.nn.functional.dropout`, ``training`` defaults to ``True``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.overrides import handle_torch_function, has_torch_function_unary

from ._blocks import (
    ZeroBlocks,
    apply_mask,
    block_rows,
    eager_cpu,
    is_channels_last,
    paint_dense,
    paint_rows,
    scale_factor,
)
from ._core import (
    ScaleMode,
    invalid_dtype,
    invalid_value,
    normalize_block_size,
    validate_flag,
    validate_per_channel,
    validate_rate,
    validate_scale,
)
from ._geometry import Plan, make_plan, static_rate
from ._sampling import Rate, sample_dense, sample_sparse, sampling_dtype

__all__ = ["drop_block1d", "drop_block2d", "drop_block3d"]

_SHAPES = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_input(input: torch.Tensor, rank: int, name: str) -> None:
    """Raise ``TypeError`` for a non-float tensor (float8 included), ``ValueError`` for a wrong rank."""
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor, got {type(input).__name__}.")
    if input.dtype not in _DTYPES:
        raise invalid_dtype(name, input.dtype)
    if input.dim() != rank + 2:
        raise ValueError(
            f"{name} expects a {rank + 2}D input {_SHAPES[rank]}, got a {input.dim()}D input of shape "
            f"{tuple(input.shape)}."
        )


def check_generator(generator: object, input: torch.Tensor) -> None:
    """Raise unless ``generator`` is ``None`` or a :class:`torch.Generator` on ``input``'s device type."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise invalid_value("generator", "a torch.Generator or None", generator)
    if generator.device.type != input.device.type:
        raise ValueError(
            f"Invalid value for `generator`: it is on {generator.device}, but the input is on {input.device}; "
            "pass a generator on the input's device."
        )


def reject_vmap(input: torch.Tensor) -> None:
    """Raise a clear error under :func:`torch.func.vmap`, which the sampler cannot run under."""
    if not torch.compiler.is_compiling() and torch._C._functorch.is_batchedtensor(input):
        raise RuntimeError(
            "DropBlock does not run under torch.func.vmap (it reads its seed count); it already works on a batch: "
            "call it on the batched tensor."
        )


def reject_tracers() -> None:
    """Raise a clear error while ``torch.jit.trace`` or an ONNX exporter records a training-mode call.

    A trace would bake in one call's scale (read on the host) and the exporters have no
    random ops to match; both record the identity in eval mode.
    """
    if torch.onnx.is_in_onnx_export():
        raise RuntimeError(
            "DropBlock cannot be exported to ONNX in training mode: call model.eval() before exporting "
            "(the layer is then the identity and leaves no trace in the graph)."
        )
    if torch.jit.is_tracing():
        raise RuntimeError(
            "DropBlock cannot be traced by torch.jit.trace in training mode (the trace would replay one "
            "call's scale): call model.eval() before tracing, or use torch.compile or torch.export."
        )


def sample_seeds(
    plan: Plan, rate: Rate, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Stage 1: flat seed indices (sparse plan) or a bool seed grid (dense plan)."""
    if plan.sparse:
        return sample_sparse(rate, plan, device, generator)
    return sample_dense(rate, plan, device, generator)


def apply_seeds(input: torch.Tensor, seeds: torch.Tensor, plan: Plan, scale: str, inplace: bool) -> torch.Tensor:
    """Stage 2: paint the seeds' blocks, then zero and rescale ``input``.

    ``seeds`` are flat corner indices (sparse plan) or a bool grid (dense plan).
    """
    channels_last = is_channels_last(input) and plan.mask_shape[1] > 1
    if seeds.dtype == torch.bool:
        dropped = paint_dense(seeds, plan, channels_last)
        return apply_mask(input, dropped, scale_factor(dropped, scale, input.dtype), inplace)
    rows = block_rows(seeds, plan, channels_last)
    if inplace or plan.mask_shape[1] != input.shape[1] or torch.compiler.is_compiling():
        dropped, dropped_count = paint_rows(rows, plan, channels_last)
        return apply_mask(input, dropped, scale_factor(dropped, scale, input.dtype, dropped_count), inplace)
    return ZeroBlocks.apply(input, rows, seeds, plan, channels_last, scale)[0]


def drop_block(
    input: torch.Tensor,
    rank: int,
    p_max: float,
    block: tuple[int, ...],
    *,
    p_now: torch.Tensor | None = None,
    per_channel: bool = True,
    scale: ScaleMode = "batch",
    inplace: bool = False,
    generator: torch.Generator | None = None,
    caller: str | None = None,
) -> torch.Tensor:
    """Training-mode DropBlock on validated arguments; the module and the functions call it.

    ``p_max`` is the largest rate the call can see (static: it sizes the sampler);
    ``p_now``, when given, is the rate in force as a 0-dim tensor (``<= p_max``), so a
    schedule changes it without recompiling. ``caller`` names the API in input errors
    (default: the function ``drop_block{rank}d``).
    """
    check_input(input, rank, caller or f"drop_block{rank}d")
    check_generator(generator, input)
    p_max = static_rate(p_max)
    if p_max == 0.0 or input.numel() == 0:
        return input
    reject_vmap(input)
    reject_tracers()
    plan = make_plan(input.shape, block, p_max, per_channel)
    rate: Rate = p_max if p_now is None else rate_in_force(p_now, p_max, input.device)
    seeds = sample_seeds(plan, rate, input.device, generator)
    return apply_seeds(input, seeds, plan, scale, inplace)


def rate_in_force(p_now: torch.Tensor, p_max: float, device: torch.device) -> Rate:
    """``p_now`` clamped to [0, ``p_max``], NaN counting as 0, as a 0-dim tensor on ``device``.

    The buffer can hold a value no validator saw (written in place, or loaded).

    On the CPU in eager mode, a Python float instead: reading it costs no device sync
    there, and the sampler then computes ``gamma`` with Python numbers rather than with
    half a dozen small tensor ops (a compiled call keeps the tensor, so a new rate does not
    recompile).
    """
    if p_now.device.type == "cpu" and eager_cpu(device):
        value = float(p_now)
        return 0.0 if math.isnan(value) else min(max(value, 0.0), p_max)
    # Clamped in the sampler's precision: the float32 buffer holds 1 - 1e-9 as 1.0, which
    # would make every corner a seed; clamped to p_max in float64 it stays below 1.
    widened = p_now.to(device=device, dtype=sampling_dtype(device))
    return torch.clamp(torch.nan_to_num(widened, nan=0.0), 0.0, p_max)


def _functional(
    rank: int,
    input: torch.Tensor,
    p: float,
    block_size: int | tuple[int, ...],
    training: bool,
    per_channel: bool,
    scale: str,
    inplace: bool,
    generator: torch.Generator | None,
) -> torch.Tensor:
    if has_torch_function_unary(input):  # an FX Proxy, a tensor subclass or a TorchFunctionMode
        options = {"per_channel": per_channel, "scale": scale, "inplace": inplace, "generator": generator}
        return handle_torch_function(_PUBLIC[rank], (input,), input, p, block_size, training=training, **options)
    rate = validate_rate(static_rate(p), "p")
    block = normalize_block_size(block_size, rank)
    per_channel = validate_per_channel(per_channel)
    scale = validate_scale(scale)
    inplace = validate_flag(inplace, "inplace")
    training = validate_flag(training, "training")
    if not training:
        check_input(input, rank, f"drop_block{rank}d")
        check_generator(generator, input)
        return input
    return drop_block(
        input, rank, rate, block, per_channel=per_channel, scale=scale, inplace=inplace, generator=generator
    )


def drop_block1d(
    input: torch.Tensor,
    p: float,
    block_size: int | tuple[int],
    *,
    training: bool = True,
    per_channel: bool = True,
    scale: ScaleMode = "batch",
    inplace: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""DropBlock on a batch of sequences :math:`(N, C, L)`.

    See :func:`drop_block2d` for the arguments.

    Examples::

        >>> g = torch.Generator().manual_seed(0)
        >>> y = drop_block1d(torch.ones(2, 3, 50), p=0.2, block_size=5, generator=g)
        >>> y.shape, bool(((y == 0) | (y > 1)).all())
        (torch.Size([2, 3, 50]), True)
    """
    return _functional(1, input, p, block_size, training, per_channel, scale, inplace, generator)


def drop_block2d(
    input: torch.Tensor,
    p: float,
    block_size: int | tuple[int, int],
    *,
    training: bool = True,
    per_channel: bool = True,
    scale: ScaleMode = "batch",
    inplace: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""DropBlock on a batch of images :math:`(N, C, H, W)`.

    Seed corners are drawn i.i.d. with probability
    :math:`\gamma = p \prod S_i / (\prod k_i \prod (S_i - k_i + 1))` over the corners whose
    block lies inside the map; each seed zeroes a ``block_size`` block, and the kept
    values are multiplied by ``numel / kept``.

    Args:
        input: a floating-point tensor (N, C, H, W), any memory format (kept in the output).
        p: drop rate in [0, 1] (not the keep rate): about the fraction of units dropped at
            the usual small rates; overlapping blocks drop less at large ones (0.36 at
            ``p=0.5`` with 7x7 blocks on 14x14 maps), and ``p=1`` drops everything.
        block_size: an int or an ``(h, w)`` tuple; clamped to the map at call time.
        training: apply DropBlock if ``True``; otherwise return ``input`` unchanged.
        per_channel: one mask per (sample, channel) (the paper's Algorithm 1); ``False``
            shares one mask per sample across channels.
        scale: ``"batch"`` (``numel / kept`` over the whole tensor), ``"sample"`` (per
            sample) or ``"none"``.
        inplace: write the result into ``input`` and return it.
        generator: a :class:`torch.Generator` on ``input``'s device that makes this call
            reproducible on its own; default: the global generator. Not under
            ``torch.utils.checkpoint``, which replays only the global generator when it
            recomputes the forward (the recomputed mask would differ), nor under
            ``torch.compile(fullgraph=True)``, which cannot trace it.

    Examples::

        >>> x = torch.randn(2, 4, 14, 14)
        >>> g = torch.Generator().manual_seed(0)
        >>> y = drop_block2d(x, p=0.1, block_size=7, generator=g)
        >>> y2 = drop_block2d(x, p=0.1, block_size=7, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(y, y2)
        True
        >>> drop_block2d(x, p=0.1, block_size=7, training=False) is x
        True
    """
    return _functional(2, input, p, block_size, training, per_channel, scale, inplace, generator)


def drop_block3d(
    input: torch.Tensor,
    p: float,
    block_size: int | tuple[int, int, int],
    *,
    training: bool = True,
    per_channel: bool = True,
    scale: ScaleMode = "batch",
    inplace: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""DropBlock on a batch of volumes :math:`(N, C, D, H, W)`.

    See :func:`drop_block2d` for the arguments.

    Examples::

        >>> y = drop_block3d(torch.ones(1, 2, 8, 8, 8), p=1.0, block_size=3)
        >>> bool((y == 0).all())
        True
    """
    return _functional(3, input, p, block_size, training, per_channel, scale, inplace, generator)


#: The public function of each rank, the one a ``__torch_function__`` handler sees (FX records it).
_PUBLIC: dict[int, Callable[..., torch.Tensor]] = {1: drop_block1d, 2: drop_block2d, 3: drop_block3d}
