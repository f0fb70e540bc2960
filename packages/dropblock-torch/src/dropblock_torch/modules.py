"""``DropBlock1d``, ``DropBlock2d`` and ``DropBlock3d`` modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ._core import (
    ScaleMode,
    at_most,
    normalize_block_size,
    validate_flag,
    validate_per_channel,
    validate_rate,
    validate_scale,
)
from .functional import check_generator, check_input, drop_block

__all__ = ["DropBlock1d", "DropBlock2d", "DropBlock3d"]

# FX symbolic tracing keeps the training-mode call as one leaf node.
torch.fx.wrap("drop_block")


class _DropBlockNd(nn.Module):
    """Shared implementation; subclasses fix the spatial rank."""

    _rank: ClassVar[int]
    p_current: torch.Tensor

    def __init__(
        self,
        p: float = 0.1,
        block_size: int | tuple[int, ...] = 7,
        *,
        per_channel: bool = True,
        scale: ScaleMode = "batch",
        inplace: bool = False,
    ) -> None:
        super().__init__()
        self._p = validate_rate(p, "p")
        self.block_size = block_size  # type: ignore[assignment]  # normalised to a tuple by the setter
        self.per_channel = per_channel
        self.scale = scale
        self.inplace = inplace
        # The rate in force, as tensor state: a schedule changes its value in place, so a
        # compiled model sees a new input value rather than a new constant (no recompilation).
        self._p_now = self._p  # its value, for a buffer without one (on the meta device)
        self.register_buffer("p_current", torch.tensor(self._p, dtype=torch.float32), persistent=False)

    @property
    def p(self) -> float:
        """The configured (maximum) drop rate; setting it also sets the rate in force."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        self._p = validate_rate(value, "p")
        self.set_current_p(self._p)

    # Every setting is checked when it is set, after construction too.
    @property
    def block_size(self) -> tuple[int, ...]:
        """The block size, one int per spatial dimension (an int sets every dimension)."""
        return self._block_size

    @block_size.setter
    def block_size(self, value: int | tuple[int, ...]) -> None:
        self._block_size = normalize_block_size(value, self._rank)

    @property
    def per_channel(self) -> bool:
        """One mask per (sample, channel); ``False`` shares one mask per sample."""
        return self._per_channel

    @per_channel.setter
    def per_channel(self, value: bool) -> None:
        self._per_channel = validate_per_channel(value)

    @property
    def scale(self) -> ScaleMode:
        """``"batch"``, ``"sample"`` or ``"none"``."""
        return self._scale

    @scale.setter
    def scale(self, value: ScaleMode) -> None:
        self._scale = validate_scale(value)

    @property
    def inplace(self) -> bool:
        """Whether the result is written into the input tensor."""
        return self._inplace

    @inplace.setter
    def inplace(self, value: bool) -> None:
        self._inplace = validate_flag(value, "inplace")

    @torch.no_grad()
    def set_current_p(self, value: float) -> None:
        """Set the rate in force, in [0, ``p``], without changing the configuration.

        It changes a tensor's value in place: a compiled model does not recompile.
        """
        rate = at_most(validate_rate(value, "p"), self._p, "p", f"a rate in force of at most p={self._p}")
        self.p_current.fill_(rate)
        self._p_now = rate

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Any:
        # The rate in force survives every conversion of the module: it stays float32
        # (``model.half()`` would round it), and ``to_empty()``, which leaves new memory
        # uninitialised, gets it back (the buffer is not in checkpoints, so loading one
        # would not restore it). A meta buffer has no value: the last one set is used.
        value = self._p_now if self.p_current.is_meta else float(self.p_current)
        result = super()._apply(fn, recurse)
        if self.p_current.dtype != torch.float32:
            self.p_current = torch.tensor(value, dtype=torch.float32, device=self.p_current.device)
        elif not self.p_current.is_meta:
            with torch.no_grad():
                self.p_current.fill_(value)  # in place: what ``fn`` made of it (shared memory...) stays
        return result

    def forward(self, input: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training:
            if not isinstance(input, torch.fx.Proxy):
                check_input(input, self._rank, type(self).__name__)
                check_generator(generator, input)
            return input
        return drop_block(
            input,
            self._rank,
            self._p,
            self._block_size,
            p_now=self.p_current,
            per_channel=self._per_channel,
            scale=self._scale,
            inplace=self._inplace,
            generator=generator,
            caller=type(self).__name__,
        )

    def __prepare_scriptable__(self) -> nn.Module:
        # ``torch.jit.script`` calls this on every submodule first; without it, TorchScript
        # fails inside the compiler with "Unknown type annotation: 'torch.Tensor'".
        raise RuntimeError(
            f"{type(self).__name__} does not support torch.jit.script (TorchScript). Use torch.compile or "
            "torch.export; for a TorchScript inference model, torch.jit.trace(model.eval(), example_inputs), "
            "where DropBlock is the identity."
        )

    def extra_repr(self) -> str:
        return (
            f"p={self._p}, block_size={self.block_size}, per_channel={self.per_channel}, "
            f"scale={self.scale!r}, inplace={self.inplace}"
        )


class DropBlock1d(_DropBlockNd):
    r"""DropBlock over sequences :math:`(N, C, L)`; see :class:`DropBlock2d`.

    Args:
        p: drop rate in [0, 1] (not the keep rate).
        block_size: an int or an ``(l,)`` tuple; clamped to the sequence at call time.
        per_channel: one mask per (sample, channel); ``False`` shares one mask per sample.
        scale: ``"batch"``, ``"sample"`` or ``"none"``, as in :class:`DropBlock2d`.
        inplace: write the result into the input tensor.

    Shape:
        - Input: :math:`(N, C, L)`.
        - Output: the same shape, dtype and memory format.

    Examples::

        >>> m = DropBlock1d(p=0.1, block_size=5)
        >>> m(torch.randn(4, 8, 64)).shape
        torch.Size([4, 8, 64])
    """

    _rank = 1


class DropBlock2d(_DropBlockNd):
    r"""DropBlock (Ghiasi, Lin and Le, 2018): zeroes contiguous blocks of each feature map.

    In training mode (``module.train()``) seed corners are drawn i.i.d. over the corners
    whose ``block_size`` block lies inside the map, with the paper's rate
    :math:`\gamma = p \prod S_i / (\prod k_i \prod (S_i - k_i + 1))`; each seed's block is
    zeroed, and the kept values are multiplied by ``numel / kept``. In eval mode the module
    returns its input.

    Args:
        p: drop rate in [0, 1] (not the keep rate): about the fraction of units dropped at
            the usual small rates; overlapping blocks drop less at large ones (0.36 at
            ``p=0.5`` with 7x7 blocks on 14x14 maps), and ``p=1`` drops everything. It
            also bounds the rate in force, ``p_current``, which
            :class:`~dropblock_torch.LinearDropBlockSchedule` ramps.
        block_size: an int or an ``(h, w)`` tuple; clamped to the map at call time.
        per_channel: one mask per (sample, channel) (the paper's Algorithm 1); ``False``
            shares one mask per sample across channels.
        scale: ``"batch"`` (over the whole tensor; under DDP, the local batch),
            ``"sample"`` (per sample) or ``"none"``.
        inplace: write the result into the input tensor.

    Shape:
        - Input: :math:`(N, C, H, W)`, channels first, any memory format.
        - Output: the same shape, dtype and memory format.

    Call ``m(input, generator=None)``: a :class:`torch.Generator` on the input's device
    makes the call reproducible on its own (default: the global generator). Under
    ``torch.utils.checkpoint`` leave it out: checkpointing replays the global generator's
    state when it recomputes the forward, not that of a generator passed in, so the
    recomputed mask (and the gradient) would differ from the forward's. Dynamo cannot trace
    a generator argument, so ``torch.compile(fullgraph=True)`` needs none.

    Under ``torch.distributed`` each rank draws its own masks even when every rank seeded
    the global generator identically (see the package README, "Distributed training").

    Examples::

        >>> m = DropBlock2d(p=0.1, block_size=7)
        >>> m
        DropBlock2d(p=0.1, block_size=(7, 7), per_channel=True, scale='batch', inplace=False)
        >>> x = torch.randn(8, 16, 14, 14)
        >>> y = m(x)
        >>> m.eval()(x) is x
        True
    """

    _rank = 2


class DropBlock3d(_DropBlockNd):
    r"""DropBlock over volumes :math:`(N, C, D, H, W)`; see :class:`DropBlock2d`.

    Args:
        p: drop rate in [0, 1] (not the keep rate).
        block_size: an int or a ``(d, h, w)`` tuple; clamped to the volume at call time.
        per_channel: one mask per (sample, channel); ``False`` shares one mask per sample.
        scale: ``"batch"``, ``"sample"`` or ``"none"``, as in :class:`DropBlock2d`.
        inplace: write the result into the input tensor.

    Shape:
        - Input: :math:`(N, C, D, H, W)`, channels first, any memory format.
        - Output: the same shape, dtype and memory format.

    Examples::

        >>> m = DropBlock3d(p=0.1, block_size=(1, 3, 3))
        >>> m(torch.randn(2, 4, 4, 16, 16)).shape
        torch.Size([2, 4, 4, 16, 16])
    """

    _rank = 3
