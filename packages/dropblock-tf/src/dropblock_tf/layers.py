"""Keras 3 layers ``DropBlock1D``, ``DropBlock2D`` and ``DropBlock3D`` (TensorFlow backend)."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import keras
import tensorflow as tf

from ._core import (
    DataFormat,
    ScaleMode,
    invalid_value,
    normalize_block_size,
    validate_per_channel,
    validate_rate,
    validate_scale,
)
from .ops import check_input, drop_block_nd, resolve_data_format, resolve_training, when_training

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
        rate: float in [0, 1], the drop rate (0.05-0.25 works best): about the fraction of
            units dropped at such rates; overlapping blocks drop less at large rates, and 1
            drops everything.
        block_size: int, or tuple of {rank} ints{axes}: the size of the dropped blocks.
        seed: int (a NumPy integer too) or None, the seed of the layer's
            ``keras.random.SeedGenerator``.
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
        training: True, False or None (the default: inference, as for every Keras layer;
            ``fit`` passes True), or a scalar bool tensor; DropBlock is applied only when
            True. Other values (``"False"``, ``0``) raise ``ValueError``.

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
        self.rate = rate
        self.block_size = block_size  # type: ignore[assignment]  # normalised to a tuple by the setter
        self.data_format = data_format  # type: ignore[assignment]  # None resolved by the setter
        self.per_channel = per_channel
        self.scale = scale
        self.seed = validate_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self._traced_rate: float | None = None  # the bound a traced call baked in (see `rate`)
        self._schedule: Any = None  # a running DropBlockSchedule, whose ramp a traced call computes
        self._traced_schedule: Any = None  # the schedule (or None) the last training-mode trace saw
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
        """The configured (maximum) drop rate; setting it also sets the rate in force, ``current_rate``.

        A function that has already traced the layer in training mode (``fit``'s train
        step, a ``tf.function``) keeps the rate it was traced with as the bound of
        ``current_rate`` until it is traced again (for ``fit``: compile the model again),
        so a new ``rate`` warns then. ``current_rate`` itself (what ``DropBlockSchedule``
        assigns) can change up to that bound without retracing.
        """
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        rate = validate_rate(value)
        traced = getattr(self, "_traced_rate", None)
        if traced is not None and rate != traced:
            warnings.warn(
                f"{self.name}: `rate` set to {rate} after a tf.function (such as fit's train step) traced "
                f"this layer at rate {traced}; if that function runs again, it keeps {traced} as the bound "
                "of the rate in force (fit's train step does until the model is compiled again: ignore "
                "this if you have compiled since). To change the rate without retracing, assign "
                "`current_rate` (up to `rate`), as DropBlockSchedule does.",
                stacklevel=2,
            )
        self._rate = rate
        if hasattr(self, "current_rate"):  # not yet while __init__ runs
            self.current_rate.assign(rate)

    @property
    def block_size(self) -> tuple[int, ...]:
        """The block, one int per spatial axis (an int given is repeated); clamped to the map at call time."""
        return self._block_size

    @block_size.setter
    def block_size(self, value: int | Sequence[int]) -> None:
        self._block_size = normalize_block_size(value, self.rank)

    @property
    def data_format(self) -> DataFormat:
        """``"channels_last"`` or ``"channels_first"`` (``None`` sets ``keras.config.image_data_format()``)."""
        return self._data_format

    @data_format.setter
    def data_format(self, value: DataFormat | None) -> None:
        self._data_format = resolve_data_format(value)

    @property
    def per_channel(self) -> bool:
        """One mask per (sample, channel) if True, else one per sample shared by the channels."""
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

    def load_own_variables(self, store: Any) -> None:
        """Load ``current_rate``; a checkpoint without it (saved before this layer was added
        to the model, or with keras-cv's ``DropBlock2D``) leaves it at ``rate``, as
        weightless layers such as ``SpatialDropout2D`` load from any checkpoint."""
        if len(store.keys()) == 0:
            return
        super().load_own_variables(store)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not isinstance(inputs, tf.Tensor | tf.Variable | tf.SparseTensor | tf.RaggedTensor):
            inputs = tf.convert_to_tensor(inputs)  # NumPy arrays, e.g. from stateless_call
        check_input(inputs, self.rank, self.data_format)
        training = resolve_training(training)
        if training is False:
            return inputs
        if not tf.executing_eagerly():  # traced in training mode: the function keeps this bound
            self._traced_rate, self._traced_schedule = self.rate, self._schedule
        if self.rate == 0.0:
            return inputs
        if training is True:
            return self._drop(inputs)
        return when_training(training, inputs, lambda: self._drop(inputs))

    def _rate_in_force(self) -> tf.Tensor:
        """``current_rate``, or the running schedule's rate at the optimizer's step.

        The schedule's rate is computed in the graph, so it ramps at every step even when
        one execution runs several (``steps_per_execution``); between executions the
        schedule also assigns it to ``current_rate``.
        """
        current = tf.convert_to_tensor(self.current_rate)
        return current if self._schedule is None else self._schedule.rate_in_graph(self.rate, current)

    def _drop(self, inputs: tf.Tensor) -> tf.Tensor:
        return drop_block_nd(
            inputs,
            self._rate_in_force(),
            max_rate=self.rate,
            seed=self.seed_generator.next(),
            block_size=self.block_size,
            data_format=self.data_format,
            per_channel=self.per_channel,
            scale=self.scale,
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


def validate_seed(seed: object) -> int | None:
    """The layer's ``seed``: an int (NumPy integers too, stored as ``int`` for ``get_config``) or None.

    >>> import numpy as np
    >>> validate_seed(np.int64(3)), validate_seed(None)
    (3, None)
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not -(2**63) <= int(seed) < 2**63:
        raise invalid_value("seed", "an int in [-2**63, 2**63 - 1] (int64) or None", seed)
    return int(seed)


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
