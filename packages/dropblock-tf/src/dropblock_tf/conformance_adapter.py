"""The conformance adapter of dropblock-tf (entry point ``dropblock.conformance: tf``).

It speaks the suite's contract (``dropblock_conformance.adapter``) by duck typing, without
importing the suite: float64 NumPy in, the result objects of ``dropblock_core.results``
(vendored as ``._core``) out. Seeds: the functional form and stage 1 use the stateless seed ``(seed, 0)``; layers get
``seed`` as their ``SeedGenerator`` seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import _masking, ops
from ._core import normalize_block_size
from ._core.results import CompileResult, DataParallelRun, OnnxExport, Output, ScheduleResult
from ._plan import dims_of, make_plan
from .layers import DropBlock1D, DropBlock2D, DropBlock3D, _DropBlockND
from .schedule import DropBlockSchedule

_LAYERS: dict[int, type[_DropBlockND]] = {1: DropBlock1D, 2: DropBlock2D, 3: DropBlock3D}
_FLOATS = ("float16", "bfloat16", "float32", "float64")


def _tensor(x: np.ndarray, dtype: str) -> tf.Tensor:
    return tf.cast(tf.constant(np.asarray(x, dtype=np.float64)), dtype)


def _output(y: tf.Tensor) -> Output:
    return Output(tf.cast(y, tf.float64).numpy(), y.dtype.name)


def _functional_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in ("data_format", "per_channel", "scale") if k in params}


def _compute_in(layer: _DropBlockND, dtype: str) -> None:
    """A Keras layer computes in its dtype policy: the suite's (float) dtype becomes the layer's."""
    if dtype in _FLOATS and layer.compute_dtype != dtype:
        layer.dtype_policy = dtype


class TFAdapter:
    """dropblock-tf under the conformance suite."""

    name = "tf"
    data_formats = ("channels_first", "channels_last")
    dtypes = _FLOATS
    expected_failures: Mapping[str, str] = MappingProxyType({})
    parameter_names: Mapping[str, str] = MappingProxyType({})

    # -- layer and functional form --------------------------------------------------------

    def make_layer(self, *, rank: int, seed: int, **params: Any) -> _DropBlockND:
        return _LAYERS[rank](params.pop("rate"), params.pop("block_size"), seed=seed, **params)

    def call_layer(self, layer: _DropBlockND, x: np.ndarray, *, dtype: str, training: bool) -> Output:
        _compute_in(layer, dtype)
        return _output(layer(_tensor(x, dtype), training=training))

    def inference_calls(self, layer: _DropBlockND, x: np.ndarray, *, dtype: str) -> dict[str, Output]:
        """``training`` left to Keras: a direct call, a functional model's call and ``Model.predict``."""
        _compute_in(layer, dtype)
        inputs = keras.Input(x.shape[1:], batch_size=x.shape[0], dtype=dtype)
        model = keras.Model(inputs, layer(inputs))
        xt = _tensor(x, dtype)
        predicted = np.asarray(model.predict(xt, batch_size=x.shape[0], verbose=0))
        return {
            "training=None": _output(layer(xt)),
            "in a Model, training=None": _output(model(xt)),
            "Model.predict": Output(predicted.astype(np.float64), predicted.dtype.name),
        }

    def call_functional(self, x: np.ndarray, *, seed: int, dtype: str, training: bool = True, **params: Any) -> Output:
        y = ops.drop_block(
            _tensor(x, dtype),
            params["rate"],
            params["block_size"],
            seed=(seed, 0),
            training=training,
            **_functional_params(params),
        )
        return _output(y)

    # -- the two stages -------------------------------------------------------------------

    def sample_seeds(self, shape: Sequence[int], *, seed: int, **params: Any) -> np.ndarray:
        data_format = params.get("data_format", "channels_first")
        plan = make_plan(
            [int(d) for d in shape],
            normalize_block_size(params["block_size"], len(shape) - 2),
            channels_last=data_format == "channels_last",
            per_channel=params.get("per_channel", True),
            max_rate=params["rate"],
        )
        grid = ops.sample_seed_grid(plan, params["rate"], ops.as_stateless_seed((seed, 0)))
        return grid.numpy().astype(bool)

    def apply_seeds(
        self, x: np.ndarray, seeds: np.ndarray, *, dtype: str, block_size: Any, data_format: str, scale: str
    ) -> Output:
        xt = _tensor(x, dtype)
        channel_axis = -1 if data_format == "channels_last" else 1
        plan = make_plan(
            dims_of(xt),
            normalize_block_size(block_size, x.ndim - 2),
            channels_last=data_format == "channels_last",
            per_channel=seeds.shape[channel_axis] == x.shape[channel_axis],
            max_rate=1.0,
        )
        grid = tf.constant(np.asarray(seeds, dtype=bool))
        per_sample = scale == "sample"
        # Both painters the layer may use must give the same mask and counts.
        keep, kept = _masking.dilate(grid, plan, per_sample=per_sample)
        positions = tf.where(tf.reshape(grid, [-1]))[:, 0]
        keep_painted, kept_painted = _masking.paint(
            positions, tf.ones_like(positions, dtype=tf.bool), plan, per_sample=per_sample
        )
        if not (np.array_equal(keep, keep_painted) and np.array_equal(kept, kept_painted)):
            raise AssertionError("the scatter painter and the dilation painter disagree")
        return _output(_masking.apply_keep(xt, (keep_painted,), kept_painted, scale))

    def gradient(
        self, x: np.ndarray, cotangent: np.ndarray, *, seed: int, dtype: str, **params: Any
    ) -> tuple[Output, np.ndarray]:
        xt, gt = _tensor(x, dtype), _tensor(cotangent, dtype)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = ops.drop_block(xt, params["rate"], params["block_size"], seed=(seed, 0), **_functional_params(params))
        grad = tape.gradient(y, xt, output_gradients=gt)
        return _output(y), tf.cast(grad, tf.float64).numpy()

    # -- framework capabilities -----------------------------------------------------------

    def compile_check(self, x: np.ndarray, rates: Sequence[float], *, seed: int, **params: Any) -> CompileResult:
        """One ``tf.function(jit_compile=True)`` training step fed every rate through the layer's rate variable."""
        rank = x.ndim - 2
        layer = _LAYERS[rank](max(rates), params.pop("block_size"), seed=seed, **params)
        traces = []

        @tf.function(jit_compile=True)
        def step(inputs: tf.Tensor) -> tf.Tensor:
            traces.append(1)
            return layer(inputs, training=True)

        xt = _tensor(x, "float32")
        outputs = []
        for rate in rates:
            layer.current_rate.assign(rate)
            outputs.append(_output(step(xt)))
        return CompileResult(outputs=outputs, compilations=len(traces))

    def rate_in_force_run(
        self, x: np.ndarray, *, rate: float, rates_in_force: Sequence[float], seed: int, dtype: str, **params: Any
    ) -> list[Output]:
        outputs = []
        for value in rates_in_force:
            layer = self.make_layer(rank=x.ndim - 2, seed=seed, rate=rate, **params)
            layer.current_rate.assign(value)  # past the `rate` setter's check
            outputs.append(self.call_layer(layer, x, dtype=dtype, training=True))
        return outputs

    def schedule_check(
        self, *, target: float, total_steps: int, start: float, probe_steps: Sequence[int], restore_step: int
    ) -> ScheduleResult:
        """Drive ``DropBlockSchedule`` through ``model.fit``; checkpoint with ``.keras`` and reload."""
        data = np.random.default_rng(0).normal(size=(2 * (max([*probe_steps, restore_step]) + 1), 6, 6, 2))
        targets = np.zeros((len(data), 1))

        def fit(model: keras.Model, steps: int) -> None:
            schedule = DropBlockSchedule(total_steps, start=start)
            if steps == 0:  # what fit does before its first step
                schedule.set_model(model)
                schedule.on_train_begin()
                return
            model.fit(data[: 2 * steps], targets[: 2 * steps], batch_size=2, epochs=1, verbose=0, callbacks=[schedule])

        def rate_of(model: keras.Model) -> float:
            return float(
                next(layer for layer in model.layers if isinstance(layer, _DropBlockND)).current_rate.value.numpy()
            )

        rates = []
        model, done = _schedule_model(target), 0
        for steps in sorted(probe_steps):
            fit(model, steps - done)
            done = steps
            rates.append((steps, rate_of(model)))
        by_step = dict(rates)
        model = _schedule_model(target)
        fit(model, restore_step)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            restored = keras.saving.load_model(path)
        restored_rate = rate_of(restored)
        fit(restored, 1)
        return ScheduleResult(
            rates=[by_step[s] for s in probe_steps], restored_rate=restored_rate, continued_rate=rate_of(restored)
        )

    def onnx_export(self, *, rank: int) -> OnnxExport:
        from ._onnx_export import onnx_export

        return onnx_export(rank)

    def data_parallel_run(self, *, rate: float, block_size: Any, scale: str, per_channel: bool) -> DataParallelRun:
        """Runs ``dropblock_tf._data_parallel`` in a subprocess (logical devices must precede TF's start-up)."""
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
        layer_args = json.dumps({"rate": rate, "block_size": block_size, "scale": scale, "per_channel": per_channel})
        proc = subprocess.run(
            [sys.executable, "-m", "dropblock_tf._data_parallel", layer_args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            return DataParallelRun(
                "channels_last", [], [], {"subprocess": f"exit {proc.returncode}: {proc.stderr[-2000:]}"}
            )
        result = json.loads(lines[-1])
        outputs = [np.asarray(out, dtype=np.float64) for out in result["outputs"]]
        inputs = [np.asarray(result["input"], dtype=np.float64)] * len(outputs)
        return DataParallelRun(result["data_format"], inputs, outputs, result["checks"])


def _schedule_model(target: float) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            DropBlock2D(target, 3, seed=0, data_format="channels_last"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


ADAPTER = TFAdapter()
