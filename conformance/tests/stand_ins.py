"""Helpers of the suite's own tests: run one spec case, and framework stand-ins built on the oracle.

A stand-in (an oracle subclass with a framework's name) is judged on the framework-only
behaviours; subclasses inject one bug each.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropblock_conformance import checks, oracle
from dropblock_conformance.adapter import CompileResult, DataParallelRun
from dropblock_conformance.oracle_adapter import OracleAdapter
from dropblock_conformance.spec import behaviour


def run(adapter: OracleAdapter, behaviour_id: str, case_name: str) -> None:
    """Run the spec case ``behaviour_id[case_name]`` against ``adapter``."""
    b = behaviour(behaviour_id)
    checks.run_case(adapter, b, next(c for c in b.cases if c.name == case_name))


def assert_caught(adapter: OracleAdapter, behaviour_id: str, case_name: str) -> None:
    """The spec case ``behaviour_id[case_name]`` fails ``adapter`` (a stand-in with a bug)."""
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        run(adapter, behaviour_id, case_name)


def case_id(value: object) -> str:
    """A parametrize id: a stand-in by its class name, anything else as text."""
    return type(value).__name__ if isinstance(value, OracleAdapter) else str(value)


class CompiledWith(OracleAdapter):
    """A compiler stand-in: its "compiled" callable is the oracle at ``compiled_rate(rate)``, compiled once."""

    name = "torch"

    def compiled_rate(self, rate, spatial, block):
        return rate

    def compile_check(self, x, rates, *, seed, **params):
        dtype = params.pop("dtype", "float32")
        spatial = oracle.spatial_shape(x.shape, params.get("data_format", "channels_first"))
        block = oracle.clamped_block(spatial, params["block_size"])
        outputs = [
            self.call_functional(x, seed=seed, dtype=dtype, **params, rate=self.compiled_rate(r, spatial, block))
            for r in rates
        ]
        return CompileResult(outputs=outputs, compilations=1)


class Replicas(OracleAdapter):
    """A DDP stand-in: ``count`` replicas call the oracle on the same input, each with its own seed."""

    name = "torch"
    count = 2

    def replica_outputs(self, xs, params):
        return [self.call_functional(x, seed=r, dtype="float32", **params).values for r, x in enumerate(xs)]

    def data_parallel_run(self, *, rate, block_size, scale, per_channel):
        params = {"rate": rate, "block_size": block_size, "scale": scale, "per_channel": per_channel}
        xs = [np.ones((4, 8, 12, 12))] * self.count
        return DataParallelRun("channels_first", xs, self.replica_outputs(xs, params), {"step ran": True})


class RatesInForce(OracleAdapter):
    """A layer whose rate in force skips validation: each value is clipped to [0, rate], NaN as 0."""

    name = "torch"

    def rate_in_force(self, value, rate):
        return 0.0 if math.isnan(value) else min(max(value, 0.0), rate)

    def rate_in_force_run(self, x, *, rate, rates_in_force, seed, dtype, **params):
        outputs = []
        for value in rates_in_force:
            layer = self.make_layer(rank=x.ndim - 2, seed=seed, **params, rate=self.rate_in_force(value, rate))
            outputs.append(self.call_layer(layer, x, dtype=dtype, training=True))
        return outputs
