"""Static geometry of one call: shapes, axes, the seed rate factor and the sampler's capacity.

Everything here is plain Python computed from static shapes while JAX traces, so the
tensor code in ``_sampling`` and ``_painting`` only ever sees fixed shapes.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from ._core import (
    clamp_block,
    gamma_factor,
    invalid_value,
    normalize_block_size,
    num_corners,
    seed_capacity,
    sparse_is_cheaper,
    valid_corners,
)

# Flat int32 indices address the mask and the corner grid.
_INDEX_LIMIT = 2**31 - 256


def validate_block_size(block_size: object, spatial_dims: int | None = None) -> int | tuple[int, ...]:
    """Check ``block_size`` in a module's constructor.

    With ``spatial_dims`` the block must be an int or a tuple of that length and comes back
    as a tuple; without it an int stays an int (any rank) and a tuple fixes the rank.

    >>> validate_block_size((3, 5))
    (3, 5)
    >>> validate_block_size(3, spatial_dims=2)
    (3, 3)
    >>> validate_block_size([3], spatial_dims=2)
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `block_size`: expected a positive int or a tuple of 2 positive ints, got [3].
    >>> validate_block_size(0)
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `block_size`: expected a positive int or a tuple of 1, 2 or 3 positive ints, got 0.
    """
    if spatial_dims is not None:
        if (
            isinstance(spatial_dims, bool)
            or not isinstance(spatial_dims, numbers.Integral)
            or spatial_dims not in (1, 2, 3)
        ):
            raise invalid_value("spatial_dims", "1, 2 or 3", spatial_dims)
        return normalize_block_size(block_size, rank=int(spatial_dims))
    try:
        if isinstance(block_size, (tuple, list)) and 1 <= len(block_size) <= 3:
            return normalize_block_size(block_size, rank=len(block_size))
        return normalize_block_size(block_size, rank=1)[0]
    except ValueError:
        expected = "a positive int or a tuple of 1, 2 or 3 positive ints"
        raise invalid_value("block_size", expected, block_size) from None


@dataclass(frozen=True)
class Layout:
    """Where the batch, channel and spatial axes are, and the static sizes that follow.

    ``grid_shape`` is the corner grid ``(N, C', *V)`` (or ``(N, *V, C')``) and
    ``mask_shape`` the keep mask ``(N, C', *S)`` (or ``(N, *S, C')``); ``C' = 1`` when the
    mask is shared across channels.
    """

    shape: tuple[int, ...]
    data_format: str
    per_channel: bool
    block: tuple[int, ...]

    @staticmethod
    def check_rank(
        shape: tuple[int, ...], block_size: object, data_format: str, spatial_dims: int | None = None
    ) -> int:
        """Raise ``ValueError`` unless ``shape`` has 1 to 3 spatial dims, as many as a tuple ``block_size``.

        ``spatial_dims`` is a module's setting that fixed the tuple's length, named in the error.

        >>> Layout.check_rank((2, 8, 8, 3), (3,), "channels_last")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Invalid input rank: block_size (3,) has 1 spatial dim, so the input must be 3D ...
        """
        rank = len(shape) - 2
        layout = "(N, C, *spatial)" if data_format == "channels_first" else "(N, *spatial, C)"
        if isinstance(block_size, (tuple, list)) and 1 <= len(block_size) <= 3 and len(block_size) != rank:
            want = len(block_size)
            if spatial_dims is not None:
                cause, remedy = f"spatial_dims={spatial_dims}", ""
            else:
                dims = "dim" if want == 1 else "dims"
                cause = f"block_size {tuple(block_size)} has {want} spatial {dims}"
                remedy = " An int block_size serves inputs of any rank."
            raise ValueError(
                f"Invalid input rank: {cause}, so the input must be {want + 2}D {layout}; "
                f"got shape {tuple(shape)} ({len(shape)}D).{remedy}"
            )
        if not 1 <= rank <= 3:
            raise ValueError(
                f"Invalid input rank: expected a 3D, 4D or 5D input {layout} with 1 to 3 spatial "
                f"dimensions, got shape {tuple(shape)} of rank {len(shape)}."
            )
        return rank

    @classmethod
    def check_block(cls, shape: tuple[int, ...], block_size: object, data_format: str) -> tuple[int, ...]:
        """Validate the rank and the block size against ``shape`` (only its length is read)."""
        return normalize_block_size(block_size, rank=cls.check_rank(shape, block_size, data_format))

    @staticmethod
    def check_static(shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` for a symbolic size (``jax.export``, jax2onnx): training mode needs every size."""
        if not all(isinstance(size, int) for size in shape):
            raise ValueError(
                f"DropBlock in training mode needs a static input shape, got {tuple(shape)}: the number of "
                "seed slots depends on every size. Export or trace the model in inference mode "
                "(deterministic=True, model.eval()), where the layer is the identity and any shape works."
            )

    @classmethod
    def of(cls, shape: tuple[int, ...], block_size: object, data_format: str, per_channel: bool) -> Layout:
        """Validate the rank and the block size against ``shape`` and clamp the block.

        Training mode needs every size: a symbolic one (``jax.export``) raises ``ValueError``.
        """
        block = cls.check_block(shape, block_size, data_format)
        cls.check_static(shape)
        spatial = cls.spatial_of(tuple(shape), data_format)
        return cls(tuple(int(d) for d in shape), data_format, per_channel, clamp_block(spatial, block))

    @staticmethod
    def spatial_of(shape: tuple[int, ...], data_format: str) -> tuple[int, ...]:
        return shape[2:] if data_format == "channels_first" else shape[1:-1]

    @property
    def channel_axis(self) -> int:
        return 1 if self.data_format == "channels_first" else len(self.shape) - 1

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        rank = len(self.shape) - 2
        start = 2 if self.data_format == "channels_first" else 1
        return tuple(range(start, start + rank))

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.spatial_of(self.shape, self.data_format)

    @property
    def corners(self) -> tuple[int, ...]:
        return valid_corners(self.spatial, self.block)

    def _with(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        shape = list(self.shape)
        if not self.per_channel:
            shape[self.channel_axis] = 1
        for axis, size in zip(self.spatial_axes, spatial, strict=True):
            shape[axis] = size
        return tuple(shape)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return self._with(self.corners)

    @property
    def mask_shape(self) -> tuple[int, ...]:
        return self._with(self.spatial)

    @property
    def num_grid(self) -> int:
        return math.prod(self.grid_shape)

    @property
    def gamma_factor(self) -> float:
        """``gamma / rate`` for ``rate < 1`` (``dropblock_core.gamma_factor``)."""
        return gamma_factor(self.spatial, self.block)

    def gamma_max(self, max_rate: float) -> float:
        """The largest seed probability a rate of at most ``max_rate`` can give."""
        if max_rate >= 1.0:
            return 1.0
        return min(1.0, max_rate * self.gamma_factor)

    def capacity(self, max_rate: float) -> int:
        """Static number of seed slots the sparse sampler draws: ``dropblock_core.seed_capacity``
        rounded up to an even count (XLA's CPU threefry draws an odd count 3x slower; a
        spare slot only adds room, it does not change the distribution)."""
        if num_corners(self.spatial, self.block) == 0:
            return 0
        capacity = seed_capacity(self.num_grid, self.gamma_max(max_rate))
        return capacity + capacity % 2

    def use_sparse(self, capacity: int) -> bool:
        """Whether to draw and paint ``capacity`` seeds rather than draw every corner and dilate."""
        return sparse_is_cheaper(capacity, self.block, math.prod(self.mask_shape))

    def check_index_range(self) -> None:
        """Flat indices are int32: refuse a mask or grid they cannot address."""
        if math.prod(self.mask_shape) > _INDEX_LIMIT:
            raise ValueError(
                f"Input too large: the keep mask of shape {self.mask_shape} has more than 2**31 - 256 elements "
                "(its flat indices are int32); split the batch, or use per_channel=False."
            )
