"""The conformance-suite adapter for ``dropblock_jax`` (entry point ``jax``).

It follows ``dropblock_conformance.adapter.Adapter`` by duck typing (it does not import
the suite): canonical parameters and float64 NumPy arrays in, the result objects of
``dropblock_core.results`` (vendored as ``._core``) out. Seeds map to ``jax.random.key(seed)``; the stateful
layer is ``dropblock_jax.nnx.DropBlock`` with ``nnx.Rngs(dropout=seed)``. float64 runs
inside ``jax.enable_x64(True)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp
import numpy as np

from . import _painting, functional
from ._core.results import CompileResult, DataParallelRun, OnnxExport, Output, ScheduleResult
from ._layout import Layout
from .functional import check_input, drop_block

_DTYPES = ("float16", "bfloat16", "float32", "float64")


@contextlib.contextmanager
def _precision(dtype: str) -> Iterator[None]:
    if dtype == "float64":
        with jax.enable_x64(True):
            yield
    else:
        yield


def _to_jax(x: np.ndarray, dtype: str) -> jax.Array:
    return jnp.asarray(np.asarray(x, dtype=np.float64)).astype(jnp.dtype(dtype))


def _output(y: jax.Array) -> Output:
    return Output(np.asarray(y).astype(np.float64), str(y.dtype))


def _stage_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical parameters -> ``drop_block`` keywords (the suite's default layout is channels_first)."""
    return {
        "data_format": params.get("data_format", "channels_first"),
        "per_channel": params.get("per_channel", True),
        "scale": params.get("scale", "batch"),
    }


class JaxAdapter:
    name = "jax"
    data_formats = ("channels_first", "channels_last")
    dtypes = _DTYPES
    expected_failures: ClassVar[dict[str, str]] = {}
    parameter_names: ClassVar[dict[str, str]] = {}

    def make_layer(self, *, rank: int, seed: int, **params: Any) -> Any:
        from flax import nnx

        from .nnx import DropBlock

        return DropBlock(
            params["rate"],
            params["block_size"],
            **_stage_params(params),
            rngs=nnx.Rngs(dropout=seed),
            spatial_dims=rank,
        )

    def call_layer(self, layer: Any, x: np.ndarray, *, dtype: str, training: bool) -> Output:
        with _precision(dtype):
            return _output(layer(_to_jax(x, dtype), deterministic=not training))

    def inference_calls(self, layer: Any, x: np.ndarray, *, dtype: str) -> dict[str, Output]:
        """NNX: ``deterministic`` at construction, ``nnx.view`` and ``.eval()``; Linen: ``deterministic=True``."""
        from flax import nnx

        from . import linen
        from .nnx import DropBlock

        settings = {
            "data_format": layer.data_format,
            "per_channel": layer.per_channel,
            "scale": layer.scale,
            "spatial_dims": x.ndim - 2,
        }
        built = DropBlock(layer.rate, layer.block_size, deterministic=True, **settings, rngs=nnx.Rngs(dropout=0))
        linen_layer = linen.DropBlock(layer.rate, layer.block_size, deterministic=True, **settings)
        with _precision(dtype):
            xj = _to_jax(x, dtype)
            outputs = {
                "nnx, deterministic=True at construction": _output(built(xj)),
                "nnx.view(deterministic=True)": _output(nnx.view(layer, deterministic=True)(xj)),
                "linen, deterministic=True at construction": _output(cast(jax.Array, linen_layer.apply({}, xj))),
            }
            layer.eval()
            outputs["nnx, after .eval()"] = _output(layer(xj))
        return outputs

    def call_functional(self, x: np.ndarray, *, seed: int, dtype: str, training: bool = True, **params: Any) -> Output:
        with _precision(dtype):
            xj = _to_jax(x, dtype)
            if not training:
                # `drop_block` is the training-mode op: inference is not calling it (as with
                # Flax's dropout, whose modules skip the mask when deterministic). Its input
                # would still be checked, as the modules check it in inference.
                return _output(check_input(xj))
            y = drop_block(jax.random.key(seed), xj, params["rate"], params["block_size"], **_stage_params(params))
            return _output(y)

    def sample_seeds(self, shape: Sequence[int], *, seed: int, **params: Any) -> np.ndarray:
        stage = _stage_params(params)
        layout = Layout.of(tuple(shape), params["block_size"], stage["data_format"], stage["per_channel"])
        rate = functional.static_rate(params["rate"])
        grid = functional.sample_seeds(jax.random.key(seed), layout, jnp.float32(rate), rate)
        return np.asarray(grid, dtype=bool)

    def apply_seeds(
        self, x: np.ndarray, seeds: np.ndarray, *, dtype: str, block_size: Any, data_format: str, scale: str
    ) -> Output:
        channel_axis = 1 if data_format == "channels_first" else -1
        per_channel = seeds.shape[channel_axis] == x.shape[channel_axis]
        layout = Layout.of(tuple(x.shape), block_size, data_format, per_channel)
        with _precision(dtype):
            return _output(_painting.apply_seed_grid(_to_jax(x, dtype), np.asarray(seeds, dtype=bool), layout, scale))

    def gradient(
        self, x: np.ndarray, cotangent: np.ndarray, *, seed: int, dtype: str, **params: Any
    ) -> tuple[Output, np.ndarray]:
        with _precision(dtype):
            stage = _stage_params(params)

            def forward(xj: jax.Array) -> jax.Array:
                return drop_block(jax.random.key(seed), xj, params["rate"], params["block_size"], **stage)

            out, vjp = jax.vjp(forward, _to_jax(x, dtype))
            (grad,) = vjp(_to_jax(cotangent, dtype))
            return _output(out), np.asarray(grad).astype(np.float64)

    def compile_check(self, x: np.ndarray, rates: Sequence[float], *, seed: int, **params: Any) -> CompileResult:
        dtype = params.pop("dtype", "float32")
        stage = _stage_params(params)
        traces = []

        @jax.jit
        def step(key: jax.Array, xj: jax.Array, rate: jax.Array) -> jax.Array:
            traces.append(1)  # runs once per trace, never at execution
            return drop_block(key, xj, rate, params["block_size"], **stage, max_rate=max(rates))

        with _precision(dtype):
            xj = _to_jax(x, dtype)
            outputs = [_output(step(jax.random.key(seed), xj, jnp.float32(r))) for r in rates]
        return CompileResult(outputs=outputs, compilations=len(traces))

    def rate_in_force_run(
        self, x: np.ndarray, *, rate: float, rates_in_force: Sequence[float], seed: int, dtype: str, **params: Any
    ) -> list[Output]:
        """The NNX module under ``nnx.jit``, each value its traced call-time ``rate``."""
        from flax import nnx

        @nnx.jit
        def train_call(layer: Any, xj: jax.Array, value: jax.Array) -> jax.Array:
            return cast(jax.Array, layer(xj, rate=value))

        outputs = []
        with _precision(dtype):
            xj = _to_jax(x, dtype)
            for value in rates_in_force:
                layer = self.make_layer(rank=x.ndim - 2, seed=seed, rate=rate, **params)
                outputs.append(_output(train_call(layer, xj, jnp.float32(value))))
        return outputs

    def schedule_check(
        self, *, target: float, total_steps: int, start: float, probe_steps: Sequence[int], restore_step: int
    ) -> ScheduleResult:
        from ._schedule_check import schedule_round_trip

        rates, restored, continued = schedule_round_trip(target, total_steps, start, probe_steps, restore_step)
        return ScheduleResult(rates=rates, restored_rate=restored, continued_rate=continued)

    def onnx_export(self, *, rank: int) -> OnnxExport:
        from ._onnx_export import onnx_export

        return onnx_export(rank)

    def data_parallel_run(self, *, rate: float, block_size: Any, scale: str, per_channel: bool) -> DataParallelRun:
        from ._parallel_check import data_parallel_run

        return data_parallel_run({"rate": rate, "block_size": block_size, "scale": scale, "per_channel": per_channel})


ADAPTER = JaxAdapter()
