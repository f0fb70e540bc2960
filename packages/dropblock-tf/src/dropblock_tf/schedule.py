"""Scheduled DropBlock: a Keras callback ramping every DropBlock layer's rate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf

from ._core import at_most, linear_ramp, validate_schedule
from .layers import _DropBlockND


def dropblock_layers(model: Any) -> Iterator[_DropBlockND]:
    """Every DropBlock layer inside ``model`` (nested models and layers included), once each."""
    seen: set[int] = set()
    stack = [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, _DropBlockND):
            yield layer
        stack.extend(getattr(layer, "_layers", []) or [])
        stack.extend(getattr(layer, "layers", []) or [])


class DropBlockSchedule(keras.callbacks.Callback):
    """Ramps the rate of every DropBlock layer of the model linearly to its target.

    The paper's scheduled DropBlock: after ``step`` training steps each layer uses
    ``start + (rate - start) * min(step / total_steps, 1)``, ``rate`` being the layer's
    configured rate. The step is the optimizer's iteration count, and the rate in force
    lives in each layer's non-trainable ``current_rate`` variable, so compiled train
    functions are not retraced and both are saved in ``.keras`` files and checkpoints:
    training resumed from one continues the ramp. During ``fit`` the train step computes
    the ramp from the iteration count itself, so it advances at every step with
    ``steps_per_execution > 1`` too; a train step traced before this schedule ran is
    traced again at the start of ``fit``.

    Args:
        total_steps: number of steps (batches) over which the rate reaches its target.
        start: rate at step 0 (default 0).

    Example:

    >>> import keras, numpy as np
    >>> from dropblock_tf import DropBlock2D, DropBlockSchedule
    >>> model = keras.Sequential([keras.Input((8, 8, 2)), DropBlock2D(0.1, 3, seed=0),
    ...                           keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> x, y = np.ones((8, 8, 8, 2)), np.ones((8, 1))
    >>> _ = model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[DropBlockSchedule(4)])
    >>> round(float(model.layers[0].current_rate.value.numpy()), 6)  # 2 steps of 4
    0.05
    """

    def __init__(self, total_steps: int, start: float = 0.0) -> None:
        super().__init__()
        _, self.total_steps, self.start = validate_schedule(1.0, total_steps, start)
        self._running: tf.Variable | None = None  # read by the traced train step: is this schedule in force?

    def _iterations(self) -> Any:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("DropBlockSchedule needs a compiled model (it counts the optimizer's iterations).")
        return optimizer.iterations

    def _step(self) -> int:
        return int(self._iterations().value.numpy())

    def rate_in_graph(self, target: float, current: tf.Tensor) -> tf.Tensor:
        """:meth:`rate_at` the optimizer's step as a float32 tensor, computed where the layer runs.

        ``fit`` with ``steps_per_execution > 1`` runs several steps per call of the train
        function, between which no callback runs: the ramp must advance inside it. Once
        this schedule's ``fit`` has ended, the layer's ``current`` rate is in force again.
        """
        target, start = self._target_and_start(target)
        step = tf.cast(tf.convert_to_tensor(self._iterations()), tf.float64)  # float64, as rate_at computes
        ramp = linear_ramp(step, self.total_steps, target, start, minimum=tf.minimum)
        ramp = tf.cast(tf.minimum(ramp, tf.constant(target, tf.float64)), tf.float32)
        return tf.where(tf.convert_to_tensor(self._running), ramp, current)

    def rate_at(self, step: int, target: float) -> float:
        """The rate a layer with target ``target`` uses after ``step`` steps (``start`` before step 0)."""
        target, start = self._target_and_start(target)
        return min(float(linear_ramp(max(step, 0), self.total_steps, target, start)), target)

    def _target_and_start(self, target: float) -> tuple[float, float]:
        """A layer's ``target`` rate and this schedule's ``start``, validated: ``start`` at most ``target``."""
        target, _, start = validate_schedule(target, self.total_steps, self.start)
        expected = f"at most the layer's rate {target} (a DropBlock layer never exceeds its configured rate)"
        return target, at_most(start, target, "start", expected)

    def _update(self) -> None:
        step = self._step()
        for layer in dropblock_layers(self.model):
            layer.current_rate.assign(self.rate_at(step, layer.rate))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        layers = list(dropblock_layers(self.model))
        if not layers:  # a schedule on the wrong model: say so
            raise ValueError("DropBlockSchedule: the model being trained holds no DropBlock layer.")
        self._update()  # validates start against every layer first
        if self._running is None:
            self._running = tf.Variable(False, trainable=False, name="dropblock_schedule_running")
        self._running.assign(True)
        stale = False
        for layer in layers:
            layer._schedule = self
            stale = stale or (layer._traced_rate is not None and layer._traced_schedule is not self)
        if stale and getattr(self.model, "train_function", None) is not None:
            self.model.make_train_function(force=True)  # a train step traced without this ramp: trace again

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._running is not None:
            self._running.assign(False)
        for layer in dropblock_layers(self.model):
            if layer._schedule is self:
                layer._schedule = None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._update()
