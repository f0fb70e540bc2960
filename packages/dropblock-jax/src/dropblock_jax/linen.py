"""``DropBlock`` as a Flax Linen module, mirroring ``flax.linen.Dropout``."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from ._core import DataFormat, ScaleMode, validate_data_format, validate_flag, validate_per_channel, validate_scale
from ._layout import Layout, validate_block_size
from .functional import check_input, concrete_rate, drop_block, static_rate, validate_rng_collection

__all__ = ["DropBlock"]


class DropBlock(nn.Module):
    """DropBlock (Ghiasi et al., 2018): zeroes contiguous blocks of feature maps in training.

    Mirrors :class:`flax.linen.Dropout`: ``deterministic`` is given to the constructor or
    at call time (``nn.merge_param``), and keys come from ``self.make_rng(rng_collection)``,
    so ``apply(..., rngs={'dropout': key})`` drives it.

    Attributes:
      rate: the drop rate in [0, 1] (_not_ the keep rate!): about the fraction of units
        dropped at the usual small rates; overlapping blocks drop less at large ones, and 1
        drops everything. A call-time ``rate``
        may not exceed it (it sizes the seed sampler): a concrete one above it raises, a
        traced one is clipped to ``[0, rate]`` (NaN counts as 0).
      block_size: an int, or a tuple with one positive int per spatial dimension.
      deterministic: if True the input is returned untouched (inference).
      data_format: ``"channels_last"`` (default, like ``nn.Conv``) or ``"channels_first"``.
      per_channel: one mask per (sample, channel) (default, the paper's Algorithm 1).
      scale: ``"batch"`` (default), ``"sample"`` or ``"none"``; see ``drop_block``.
        Under ``jax.jit`` with a sharded batch, ``"batch"`` counts over the global batch.
      rng_collection: the rng collection name used to draw keys.
      spatial_dims: optionally 1, 2 or 3: fixes the input rank (``spatial_dims + 2``); a
        ``block_size`` tuple of another length raises at construction.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import flax.linen as nn
      >>> from dropblock_jax.linen import DropBlock
      >>> layer = DropBlock(0.2, 3)
      >>> x = jnp.ones((2, 8, 8, 4))
      >>> y = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
      >>> bool(((y == 0) | (y > 1)).all())
      True
      >>> bool((layer.apply({}, x, deterministic=True) == x).all())
      True
    """

    rate: float
    block_size: int | tuple[int, ...]
    deterministic: bool | None = None
    data_format: DataFormat = "channels_last"
    per_channel: bool = True
    scale: ScaleMode = "batch"
    rng_collection: str = "dropout"
    spatial_dims: int | None = None

    def __post_init__(self) -> None:
        static_rate(self.rate)
        validate_block_size(self.block_size, self.spatial_dims)
        validate_data_format(self.data_format)
        validate_per_channel(self.per_channel)
        validate_scale(self.scale)
        validate_rng_collection(self.rng_collection)
        super().__post_init__()

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array,
        deterministic: bool | None = None,
        rng: jax.Array | None = None,
        rate: float | jax.Array | None = None,
    ) -> jax.Array:
        """Apply DropBlock unless deterministic.

        Args:
          inputs: ``(N, *spatial, C)`` or ``(N, C, *spatial)`` floating-point array.
          deterministic: if given here, not in the constructor (``nn.merge_param``).
          rng: an explicit key instead of ``self.make_rng(self.rng_collection)``.
          rate: a call-time rate (may be traced, e.g. from ``linear_schedule``), at most the
            configured ``rate``; changing it does not recompile.
        """
        deterministic = validate_flag(
            nn.merge_param("deterministic", self.deterministic, deterministic), "deterministic"
        )
        inputs = check_input(inputs)
        bound = static_rate(self.rate)
        block = validate_block_size(self.block_size, self.spatial_dims)
        Layout.check_rank(tuple(inputs.shape), block, self.data_format, self.spatial_dims)  # in inference too
        current: Any = bound if rate is None else rate
        fixed = concrete_rate(current)
        if deterministic or fixed == 0.0:
            return inputs
        Layout.check_static(tuple(inputs.shape))  # before a key is drawn: its error would be Flax's
        if rng is None:
            rng = self.make_rng(self.rng_collection)
        return drop_block(
            rng,
            inputs,
            current,
            block,
            data_format=self.data_format,
            per_channel=self.per_channel,
            scale=self.scale,
            max_rate=bound,
        )
