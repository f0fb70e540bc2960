"""The conformance adapter: how the shared suite drives ``dropblock_torch``.

Registered as the ``torch`` entry point of the ``dropblock.conformance`` group. It speaks
the suite's language (float64 NumPy arrays, canonical parameter names, ``rate`` for
``p``) and returns the result objects of ``dropblock_core.results``. Stage 1 and stage 2
run the very functions the layer runs (``functional.sample_seeds`` / ``apply_seeds``).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from . import functional
from ._core import normalize_block_size, sparse_is_cheaper, validate_data_format
from ._core.results import CompileResult, DataParallelRun, OnnxExport, Output, ScheduleResult
from ._geometry import make_plan
from .modules import DropBlock1d, DropBlock2d, DropBlock3d, _DropBlockNd
from .schedule import LinearDropBlockSchedule

_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}
_MODULES: dict[int, type[_DropBlockNd]] = {1: DropBlock1d, 2: DropBlock2d, 3: DropBlock3d}
_FUNCTIONS = {1: functional.drop_block1d, 2: functional.drop_block2d, 3: functional.drop_block3d}


@dataclass
class SeededLayer:
    """A module and the generator that makes its calls reproducible from the case's seed."""

    module: _DropBlockNd
    generator: torch.Generator


def to_torch(x: np.ndarray, dtype: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(_DTYPES[dtype])


def to_output(t: torch.Tensor) -> Output:
    return Output(t.detach().to(torch.float64).cpu().numpy(), _NAMES[t.dtype])


def _torch_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical parameters -> module keyword arguments (channels-first only)."""
    data_format = validate_data_format(params.get("data_format", "channels_first"))
    if data_format != "channels_first":
        raise ValueError("dropblock_torch takes channels-first (N, C, *S) input only")
    return {
        "p": params["rate"],
        "block_size": params["block_size"],
        "per_channel": params.get("per_channel", True),
        "scale": params.get("scale", "batch"),
    }


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


class TorchAdapter:
    name = "torch"
    # The torch API is NCHW only (a channels_last *memory format* is a stride choice, covered
    # by the package tests), so the suite skips its channels_last data-format cases here.
    data_formats = ("channels_first",)
    dtypes = ("float16", "bfloat16", "float32", "float64")
    expected_failures: ClassVar[dict[str, str]] = {}
    parameter_names: ClassVar[dict[str, str]] = {"rate": "p"}

    def make_layer(self, *, rank: int, seed: int, **params: Any) -> SeededLayer:
        return SeededLayer(_MODULES[rank](**_torch_params(params)), _generator(seed))

    def call_layer(self, layer: SeededLayer, x: np.ndarray, *, dtype: str, training: bool) -> Output:
        layer.module.train(training)
        with torch.no_grad():
            return to_output(layer.module(to_torch(x, dtype), generator=layer.generator))

    def inference_calls(self, layer: SeededLayer, x: np.ndarray, *, dtype: str) -> dict[str, Output]:
        module = layer.module.eval()
        inp = to_torch(x, dtype)
        with torch.inference_mode():
            under_inference_mode = to_output(module(inp, generator=layer.generator))
        with_grad = module(inp.clone().requires_grad_(), generator=layer.generator)
        return {
            "eval() under torch.inference_mode": under_inference_mode,
            "eval(), input requiring grad": to_output(with_grad),
        }

    def _functional(self, x: torch.Tensor, seed: int, training: bool, params: Mapping[str, Any]) -> torch.Tensor:
        kwargs = _torch_params(params)
        p, block_size = kwargs.pop("p"), kwargs.pop("block_size")
        rank = min(max(x.dim() - 2, 1), 3)
        return _FUNCTIONS[rank](x, p, block_size, training=training, generator=_generator(seed), **kwargs)

    def call_functional(self, x: np.ndarray, *, seed: int, dtype: str, training: bool = True, **params: Any) -> Output:
        with torch.no_grad():
            return to_output(self._functional(to_torch(x, dtype), seed, training, params))

    def sample_seeds(self, shape: Sequence[int], *, seed: int, **params: Any) -> np.ndarray:
        kwargs = _torch_params(params)
        block = normalize_block_size(kwargs["block_size"], len(shape) - 2)
        plan = make_plan(tuple(shape), block, float(kwargs["p"]), kwargs["per_channel"])
        seeds = functional.sample_seeds(plan, float(kwargs["p"]), torch.device("cpu"), _generator(seed))
        if seeds.dtype == torch.bool:
            return seeds.numpy()
        grid = torch.zeros(plan.corners + 1, dtype=torch.bool)
        grid[seeds.clamp(max=plan.corners)] = True
        return grid[: plan.corners].view(plan.grid).numpy()

    def apply_seeds(
        self, x: np.ndarray, seeds: np.ndarray, *, dtype: str, block_size: Any, data_format: str, scale: str
    ) -> Output:
        _torch_params({"rate": 0.0, "block_size": block_size, "data_format": data_format})
        block = normalize_block_size(block_size, x.ndim - 2)
        per_channel = seeds.shape[1] == x.shape[1]
        plan = make_plan(x.shape, block, 0.0, per_channel)
        count = int(seeds.sum())
        # The layer's choice between its two painters, made on the actual seed count.
        plan = dataclasses.replace(plan, capacity=count, sparse=sparse_is_cheaper(count, plan.block, x.size))
        stage1 = torch.from_numpy(np.flatnonzero(seeds)) if plan.sparse else torch.from_numpy(seeds.astype(bool))
        with torch.no_grad():
            return to_output(functional.apply_seeds(to_torch(x, dtype), stage1, plan, scale, inplace=False))

    def gradient(
        self, x: np.ndarray, cotangent: np.ndarray, *, seed: int, dtype: str, **params: Any
    ) -> tuple[Output, np.ndarray]:
        inp = to_torch(x, dtype).requires_grad_()
        out = self._functional(inp, seed, True, params)
        out.backward(to_torch(cotangent, dtype))
        assert inp.grad is not None
        return to_output(out), inp.grad.to(torch.float64).numpy()

    def compile_check(self, x: np.ndarray, rates: Sequence[float], *, seed: int, **params: Any) -> CompileResult:
        from torch._dynamo.testing import CompileCounterWithBackend

        kwargs = _torch_params({**params, "rate": max(rates)})
        module = _MODULES[x.ndim - 2](**kwargs).train()
        # A fresh cache: a frame compiled for an earlier case's p would recompile here for
        # this p (by design: each maximum p compiles its own graph), not for a rate change.
        torch._dynamo.reset()
        counter = CompileCounterWithBackend("inductor")
        compiled = torch.compile(module, backend=counter, fullgraph=True)
        inp = to_torch(x, params.get("dtype", "float32"))
        outputs = []
        for rate in rates:
            module.set_current_p(rate)
            torch.manual_seed(seed)
            with torch.no_grad():
                outputs.append(to_output(compiled(inp)))
        return CompileResult(outputs=outputs, compilations=counter.frame_count)

    def rate_in_force_run(
        self, x: np.ndarray, *, rate: float, rates_in_force: Sequence[float], seed: int, dtype: str, **params: Any
    ) -> list[Output]:
        outputs = []
        for value in rates_in_force:
            layer = self.make_layer(rank=x.ndim - 2, seed=seed, rate=rate, **params)
            layer.module.get_buffer("p_current").fill_(value)  # past set_current_p's check
            outputs.append(self.call_layer(layer, x, dtype=dtype, training=True))
        return outputs

    def schedule_check(
        self, *, target: float, total_steps: int, start: float, probe_steps: Sequence[int], restore_step: int
    ) -> ScheduleResult:
        def build() -> tuple[nn.Module, LinearDropBlockSchedule]:
            model = nn.Sequential(nn.Conv2d(2, 2, 3), DropBlock2d(p=target, block_size=3))
            return model, LinearDropBlockSchedule(model, total_steps, start=start)

        def rate(model: nn.Module) -> float:
            return float(model.get_buffer("1.p_current"))

        rates = []
        for steps in probe_steps:
            model, schedule = build()
            for _ in range(steps):
                schedule.step()
            rates.append(rate(model))
        model, schedule = build()
        for _ in range(restore_step):
            schedule.step()
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        restored, restored_schedule = build()
        restored.load_state_dict(torch.load(buffer, weights_only=True))
        restored_rate = rate(restored)
        restored_schedule.step()
        return ScheduleResult(rates=rates, restored_rate=restored_rate, continued_rate=rate(restored))

    def onnx_export(self, *, rank: int) -> OnnxExport:
        from ._onnx_export import onnx_export

        return onnx_export(rank)

    def data_parallel_run(self, *, rate: float, block_size: Any, scale: str, per_channel: bool) -> DataParallelRun:
        from ._ddp_check import data_parallel_run

        return data_parallel_run(rate, block_size, scale=scale, per_channel=per_channel)


ADAPTER = TorchAdapter()
