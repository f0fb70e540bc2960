"""``DropBlock`` as a Flax NNX module, mirroring ``flax.nnx.Dropout``."""

from __future__ import annotations

import jax
from flax import nnx

from ._core import DataFormat, ScaleMode, validate_data_format, validate_flag, validate_per_channel, validate_scale
from ._layout import Layout, validate_block_size
from .functional import check_input, concrete_rate, drop_block, static_rate, validate_rng_collection

__all__ = ["DropBlock"]


class DropBlock(nnx.Module):
    """DropBlock (Ghiasi et al., 2018): zeroes contiguous blocks of feature maps in training.

    Mirrors :class:`flax.nnx.Dropout`: it draws from a forked ``rngs`` stream (by default
    the ``'dropout'`` collection, shared with ``nnx.Dropout``), ``model.train()`` and
    ``model.eval()`` switch it, and values given at call time take precedence. Its RNG
    state is part of the module's state, so ``nnx.split``/``nnx.merge`` and checkpoints
    carry it, and ``nnx.jit`` advances it.

    Args:
      rate: the drop rate in [0, 1] (_not_ the keep rate!): about the fraction of units
        dropped at the usual small rates; overlapping blocks drop less at large ones, and 1
        drops everything. A call-time ``rate``
        may not exceed it: it sizes the seed sampler (see ``drop_block``'s ``max_rate``).
        A concrete one above it raises; a traced one is clipped to ``[0, rate]`` (NaN
        counts as 0).
      block_size: an int, or a tuple with one positive int per spatial dimension.
      data_format: ``"channels_last"`` (default, like ``nnx.Conv``) or ``"channels_first"``.
      per_channel: one mask per (sample, channel) (default, the paper's Algorithm 1).
      scale: ``"batch"`` (default), ``"sample"`` or ``"none"``; see ``drop_block``.
        Under ``jax.jit`` with a sharded batch, ``"batch"`` counts over the global batch.
      deterministic: if True the input is returned untouched (inference).
      rng_collection: the rng collection name used to draw keys.
      rngs: an ``nnx.Rngs`` or ``nnx.RngStream``; the module keeps a fork of it.
      spatial_dims: optionally 1, 2 or 3: fixes the input rank (``spatial_dims + 2``), so a
        ``block_size`` tuple of another length raises here and an input of another rank
        raises at call time. By default an int ``block_size`` serves any rank and a tuple
        fixes the rank by its length.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from dropblock_jax.nnx import DropBlock
      >>> layer = DropBlock(0.2, 3, rngs=nnx.Rngs(dropout=0))
      >>> x = jnp.ones((2, 8, 8, 4))
      >>> y = layer(x)
      >>> bool((y != layer(x)).any())  # each call draws new blocks
      True
      >>> layer.eval()
      >>> bool((layer(x) == x).all())
      True
    """

    def __init__(
        self,
        rate: float,
        block_size: int | tuple[int, ...],
        *,
        data_format: DataFormat = "channels_last",
        per_channel: bool = True,
        scale: ScaleMode = "batch",
        deterministic: bool | None = False,
        rng_collection: str = "dropout",
        rngs: nnx.Rngs | nnx.RngStream | None = None,
        spatial_dims: int | None = None,
    ):
        self.rate = static_rate(rate)
        self.block_size = validate_block_size(block_size, spatial_dims)
        self.spatial_dims = spatial_dims
        self.data_format = validate_data_format(data_format)
        self.per_channel = validate_per_channel(per_channel)
        self.scale = validate_scale(scale)
        self.deterministic = None if deterministic is None else validate_flag(deterministic, "deterministic")
        self.rng_collection = validate_rng_collection(rng_collection)
        if isinstance(rngs, nnx.Rngs):
            self.rngs = rngs[self.rng_collection].fork()
        elif isinstance(rngs, nnx.RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = nnx.data(None)
        else:
            raise TypeError(f"rngs must be a Rngs, RngStream or None, but got {type(rngs)}.")

    def __call__(
        self,
        inputs: jax.Array,
        *,
        deterministic: bool | None = None,
        rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None,
        rate: float | jax.Array | None = None,
    ) -> jax.Array:
        """Apply DropBlock unless deterministic.

        Args:
          inputs: ``(N, *spatial, C)`` or ``(N, C, *spatial)`` floating-point array.
          deterministic: overrides the attribute when given.
          rngs: a key, ``RngStream`` or ``Rngs`` that overrides the stored stream.
          rate: a call-time rate (may be traced, e.g. from ``linear_schedule``), at most the
            configured ``rate``; changing it does not recompile.
        """
        deterministic = nnx.module.first_from(
            deterministic,
            self.deterministic,
            error_msg=(
                "No `deterministic` argument was provided to DropBlock. Pass it to the constructor or "
                "to __call__, call `model.train()` / `model.eval()`, or use `nnx.view(model, deterministic=...)`."
            ),
        )
        deterministic = validate_flag(deterministic, "deterministic")
        inputs = check_input(inputs)
        Layout.check_rank(tuple(inputs.shape), self.block_size, self.data_format, self.spatial_dims)  # in inference too
        current = self.rate if rate is None else rate
        fixed = concrete_rate(current)
        if deterministic or fixed == 0.0:
            return inputs
        Layout.check_static(tuple(inputs.shape))  # before a key is drawn: its error would be Flax's
        key = self._key(rngs)
        return drop_block(
            key,
            inputs,
            current,
            self.block_size,
            data_format=self.data_format,
            per_channel=self.per_channel,
            scale=self.scale,
            max_rate=self.rate,
        )

    def _key(self, rngs: nnx.Rngs | nnx.RngStream | jax.Array | None) -> jax.Array:
        rngs = nnx.module.first_from(
            rngs,
            self.rngs,
            error_msg="`deterministic` is False, but no `rngs` argument was provided to DropBlock "
            "as either a __call__ argument or class attribute.",
        )
        if isinstance(rngs, nnx.Rngs):
            return rngs[self.rng_collection]()
        if isinstance(rngs, nnx.RngStream):
            return rngs()
        if isinstance(rngs, jax.Array):
            return rngs
        raise TypeError(f"rngs must be a Rngs, RngStream or jax.Array, but got {type(rngs)}.")

    def set_view(self, deterministic: bool | None = None) -> None:
        """Used by ``nnx.view``: ``nnx.view(model, deterministic=True)`` gives an inference view.

        Args:
          deterministic: if True the layer returns its input (inference); if False it drops
            blocks (training).
        """
        if deterministic is not None:
            self.deterministic = deterministic
