"""Keras 3 layers ``DropBlock1D``, ``DropBlock2D`` and ``DropBlock3D`` (TensorFlow backend)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import keras
import tensorflow as tf

from ._core import DataFormat, ScaleMode, normalize_block_size, validate_per_channel, validate_rate, validate_scale
from .ops import check_input, drop_block_nd, resolve_data_format, when_training

_DOC = """Applies DropBlock{rank}D regularization (Ghiasi, Lin and Le, NeurIPS 2018).

    DropBlock is a structured dropout: units in contiguous blocks of a feature map are
    dropped together, which regularises convolutional layers better than dropout because
    neighbouring activations are correlated. Use it after Conv -> BatchNorm -> Activation
    blocks in the later stages of a network (the paper uses groups 3 and 4 of a ResNet,
    rate 0.1 and block size 7 on 14x14 maps), ideally with its rate ramped up by
    ``dropblock_tf.DropBlockSchedule``.

    Block corners are drawn i.i.d. Bernoulli(gamma) over the corners whose block lies
    fully inside the map, ``gamma = rate * prod(S) / (prod(k) * prod(S - k + 1))`` (the
    paper's eq. 1 on any map shape); each block is clamped to the map, so an oversized
    block drops whole maps with probability ``rate``. The kept units are scaled by
    ``numel / kept``.

    Args:
        rate: float in [0, 1], the probability of dropping a unit (0.05-0.25 works best).
        block_size: int, or tuple of {rank} ints{axes}: the size of the dropped blocks.
        seed: int or None, the seed of the layer's ``keras.random.SeedGenerator``.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults to
            ``keras.config.image_data_format()``.
        per_channel: if True (default, the paper's Algorithm 1) every (sample, channel)
            gets its own mask; if False one mask per sample is shared by all channels.
        scale: ``"batch"`` (default): kept units are scaled by numel / kept over the whole
            tensor; ``"sample"``: per sample; ``"none"``: no rescaling. Under
            ``tf.distribute`` (``MirroredStrategy``) "batch" is the replica's local batch,
            and every replica draws its own masks.
        **kwargs: base layer keyword arguments, such as ``name`` and ``dtype``.

    Call arguments:
        inputs: float tensor{shape_doc}.
        training: Python bool; DropBlock is applied only when True (``None``, the default,
            means inference, as for every Keras layer; ``fit`` passes True).

    Input shape:
        Any float tensor of rank {ndim}; integer and bool inputs raise ``TypeError``.

    Output shape:
        Same shape and dtype (the layer's compute dtype) as the input.

    Reference:

    - [Ghiasi, Lin and Le, "DropBlock: A regularization method for convolutional
      networks", NeurIPS 2018](https://arxiv.org/abs/1810.12890)

    Example:

    >>> import numpy as np
    >>> from dropblock_tf import DropBlock{rank}D
    >>> layer = DropBlock{rank}D(0.2, block_size=3, seed=1)
    >>> x = np.ones({example_shape}, dtype="float32")
    >>> y = layer(x, training=True)
    >>> tuple(y.shape) == x.shape
    True
    >>> bool(np.all(layer(x) == x))  # inference: the identity
    True
"""


class _DropBlockND(keras.layers.Layer):
    """Shared implementation of the 1D/2D/3D layers."""

    rank: ClassVar[int] = 0

    def __init__(
        self,
        rate: float,
        block_size: int | Sequence[int],
        seed: int | None = None,
        *,
        data_format: DataFormat | None = None,
        per_channel: bool = True,
        scale: ScaleMode = "batch",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rate = validate_rate(rate)
        self.block_size = normalize_block_size(block_size, self.rank)
        self.data_format = resolve_data_format(data_format)
        self.per_channel = validate_per_channel(per_channel)
        self.scale = validate_scale(scale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # The rate in force; DropBlockSchedule ramps it. The sampler's capacity comes from
        # `self.rate`, the static upper bound of this variable.
        self.current_rate = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.rate),
            dtype="float32",
            trainable=False,
            autocast=False,  # read in float32 under mixed precision (0.1 is not a float16 number)
            name="current_rate",
        )
        self.supports_masking = True
        if hasattr(self, "_build_at_init"):  # Keras >= 3.9
            self._build_at_init()
        else:  # pragma: no cover - older Keras 3
            self.built = True

    @property
    def rate(self) -> float:
        """The configured (maximum) drop rate; setting it also sets the rate in force, ``current_rate``."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        self._rate = validate_rate(value)
        if hasattr(self, "current_rate"):  # not yet while __init__ runs
            self.current_rate.assign(self._rate)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not isinstance(inputs, tf.Tensor | tf.Variable | tf.SparseTensor | tf.RaggedTensor):
            inputs = tf.convert_to_tensor(inputs)  # NumPy arrays, e.g. from stateless_call
        check_input(inputs, self.rank, self.data_format)
        if self.rate == 0.0 or training is None or training is False:
            return inputs
        if isinstance(training, tf.Tensor | tf.Variable):
            return when_training(training, inputs, lambda: self._drop(inputs))
        if not training:
            return inputs
        return self._drop(inputs)

    def _drop(self, inputs: tf.Tensor) -> tf.Tensor:
        return drop_block_nd(
            inputs,
            tf.convert_to_tensor(self.current_rate),
            max_rate=self.rate,
            seed=self.seed_generator.next(),
            block_size=self.block_size,
            data_format=self.data_format,
            per_channel=self.per_channel,
            scale=self.scale,
            fixed_max_rate=True,
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def compute_output_spec(self, inputs: Any, training: Any = None) -> keras.KerasTensor:
        """The input's shape in the layer's compute dtype; a wrong rank or dtype raises while the model is built."""
        check_input(inputs, self.rank, self.data_format)
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "rate": self.rate,
                "block_size": list(self.block_size),
                "seed": self.seed,
                "data_format": self.data_format,
                "per_channel": self.per_channel,
                "scale": self.scale,
            }
        )
        return config


def _doc(rank: int) -> str:
    shapes = {
        1: ("(N, L, C)", "(N, C, L)"),
        2: ("(N, H, W, C)", "(N, C, H, W)"),
        3: ("(N, D, H, W, C)", "(N, C, D, H, W)"),
    }
    axes = {1: " (length)", 2: " (height, width)", 3: " (depth, height, width)"}
    examples = {1: "(2, 16, 4)", 2: "(2, 8, 8, 4)", 3: "(2, 6, 6, 6, 4)"}
    last, first = shapes[rank]
    return _DOC.format(
        rank=rank,
        ndim=rank + 2,
        axes=axes[rank],
        shape_doc=f" {last} (channels_last) or {first} (channels_first)",
        example_shape=examples[rank],
    )


@keras.saving.register_keras_serializable(package="dropblock")
class DropBlock1D(_DropBlockND):
    __doc__ = _doc(1)
    rank = 1


@keras.saving.register_keras_serializable(package="dropblock")
class DropBlock2D(_DropBlockND):
    __doc__ = _doc(2)
    rank = 2


@keras.saving.register_keras_serializable(package="dropblock")
class DropBlock3D(_DropBlockND):
    __doc__ = _doc(3)
    rank = 3
