"""The oracle as an implementation under test: the suite runs against it first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from dropblock_core import normalize_block_size

from . import oracle
from .adapter import DTYPES, Output, ScheduleResult
from .dtypes import round_to


class OracleLayer:
    """A stateful oracle layer: parameters checked at construction, its own RNG stream."""

    def __init__(self, *, rank: int, seed: int, **params: Any) -> None:
        oracle.check_params(
            params["rate"],
            params["block_size"],
            rank,
            params.get("data_format", "channels_first"),
            params.get("per_channel", True),
            params.get("scale", "batch"),
        )
        self.rank = rank
        self.params = params
        self.rng = np.random.default_rng(seed)


def _check_input(x: np.ndarray, dtype: str, rank: int | None = None) -> None:
    if dtype not in DTYPES:
        raise TypeError(f"DropBlock expects a floating-point input, got {dtype}")
    if rank is not None and x.ndim != rank + 2:
        raise ValueError(f"Expected a {rank + 2}-dimensional input (rank {rank}), got {x.ndim} dimensions")


class OracleAdapter:
    name = "oracle"
    data_formats = ("channels_first", "channels_last")
    dtypes = DTYPES
    expected_failures: Mapping[str, str] = MappingProxyType({})
    parameter_names: Mapping[str, str] = MappingProxyType({})

    def make_layer(self, *, rank: int, seed: int, **params: Any) -> OracleLayer:
        return OracleLayer(rank=rank, seed=seed, **params)

    def call_layer(self, layer: OracleLayer, x: np.ndarray, *, dtype: str, training: bool) -> Output:
        _check_input(x, dtype, layer.rank)
        out = oracle.drop_block(x, rng=layer.rng, dtype=dtype, training=training, **layer.params)
        return Output(out, dtype)

    def call_functional(self, x: np.ndarray, *, seed: int, dtype: str, training: bool = True, **params: Any) -> Output:
        _check_input(x, dtype)
        out = oracle.drop_block(x, rng=np.random.default_rng(seed), dtype=dtype, training=training, **params)
        return Output(out, dtype)

    def inference_calls(self, layer: OracleLayer, x: np.ndarray, *, dtype: str) -> Mapping[str, Output]:
        return {}  # the oracle has one inference mode, training=False

    def sample_seeds(self, shape: Sequence[int], *, seed: int, **params: Any) -> np.ndarray:
        return oracle.sample_seeds(
            np.random.default_rng(seed),
            shape,
            params["rate"],
            params["block_size"],
            data_format=params.get("data_format", "channels_first"),
            per_channel=params.get("per_channel", True),
        )

    def apply_seeds(
        self, x: np.ndarray, seeds: np.ndarray, *, dtype: str, block_size: Any, data_format: str, scale: str
    ) -> Output:
        normalize_block_size(block_size, x.ndim - 2)
        out = oracle.apply_seeds(x, seeds, dtype=dtype, block_size=block_size, data_format=data_format, scale=scale)
        return Output(out, dtype)

    def gradient(
        self, x: np.ndarray, cotangent: np.ndarray, *, seed: int, dtype: str, **params: Any
    ) -> tuple[Output, np.ndarray]:
        # The output is linear in x with coefficients keep * s, so the VJP applies the same
        # seeds to the cotangent.
        if params["rate"] == 0.0:
            return Output(round_to(x, dtype), dtype), round_to(cotangent, dtype)
        seeds = self.sample_seeds(x.shape, seed=seed, **params)
        stage2 = {k: params.get(k, d) for k, d in (("data_format", "channels_first"), ("scale", "batch"))}
        out = oracle.apply_seeds(x, seeds, dtype=dtype, block_size=params["block_size"], **stage2)
        grad = oracle.apply_seeds(cotangent, seeds, dtype=dtype, block_size=params["block_size"], **stage2)
        return Output(out, dtype), grad

    def schedule_check(
        self, *, target: float, total_steps: int, start: float, probe_steps: Sequence[int], restore_step: int
    ) -> ScheduleResult:
        rates = []
        for steps in probe_steps:
            schedule = oracle.LinearSchedule(target, total_steps, start)
            for _ in range(steps):
                schedule.step()
            rates.append(schedule.rate)
        saved = oracle.LinearSchedule(target, total_steps, start)
        for _ in range(restore_step):
            saved.step()
        restored = oracle.LinearSchedule(target, total_steps, start)
        restored.load_state_dict(saved.state_dict())
        restored_rate = restored.rate
        restored.step()
        return ScheduleResult(rates=rates, restored_rate=restored_rate, continued_rate=restored.rate)


ADAPTER = OracleAdapter()
