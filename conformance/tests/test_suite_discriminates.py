"""The suite must fail the bugs today's implementations have.

Each test wraps the oracle adapter with one known bug (from shared/research/anchors.md)
and checks that the behaviour meant to catch it raises.
"""

from __future__ import annotations

import numpy as np
import pytest

from dropblock_conformance import checks, oracle
from dropblock_conformance.adapter import Output
from dropblock_conformance.oracle_adapter import OracleAdapter
from dropblock_conformance.spec import behaviour
from dropblock_core import gamma_factor


def run(adapter: OracleAdapter, behaviour_id: str, case_name: str) -> None:
    b = behaviour(behaviour_id)
    checks.run_case(adapter, b, next(c for c in b.cases if c.name == case_name))


class SharedMaskByDefault(OracleAdapter):
    """timm 1.0.31 / miguelvr: one mask per sample even when per_channel=True."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        return super().call_functional(x, seed=seed, dtype=dtype, training=training, **{**params, "per_channel": False})


class UncorrectedGamma(OracleAdapter):
    """miguelvr: gamma = rate / k**2, no valid-region correction."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        k = params["block_size"] if isinstance(params["block_size"], int) else params["block_size"][0]
        spatial = oracle.spatial_shape(x.shape, params.get("data_format", "channels_first"))
        factor = gamma_factor(spatial, (min(k, spatial[0]),) * len(spatial))
        rate = params["rate"] / (k * k) / factor if factor else params["rate"]
        return super().call_functional(x, seed=seed, dtype=dtype, training=training, **{**params, "rate": rate})


class RowBoundUsesWidth(OracleAdapter):
    """keras-cv: seeds only in rows below the width, so tall maps never drop bottom rows."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        out = super().call_functional(x, seed=seed, dtype=dtype, training=training, **params)
        values = out.values.copy()
        width = x.shape[-1]
        values[..., width:, :] = np.where(values[..., width:, :] == 0, x[..., width:, :], values[..., width:, :])
        return Output(values, out.dtype)


class HalfPrecisionCount(OracleAdapter):
    """torchvision: the kept count summed in float16 overflows and the output collapses to zeros."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        out = super().call_functional(x, seed=seed, dtype=dtype, training=training, **params)
        if dtype == "float16" and x.size > 65504:
            return Output(np.zeros_like(out.values), dtype)
        return out


class NanForOversizedBlocks(OracleAdapter):
    """keras-cv: block = map + 1 divides by zero."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        out = super().call_functional(x, seed=seed, dtype=dtype, training=training, **params)
        return Output(np.full_like(out.values, np.nan), dtype)


class AcceptsAnyRate(OracleAdapter):
    """timm: no validation of the rate."""

    def make_layer(self, *, rank, seed, **params):
        return super().make_layer(rank=rank, seed=seed, **{**params, "rate": 0.5})


class Float32Output(OracleAdapter):
    """miguelvr / keras-cv default policy: half-precision input comes back float32."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        out = super().call_functional(x, seed=seed, dtype=dtype, training=training, **params)
        return Output(out.values, "float32")


class MaskedGradientMissing(OracleAdapter):
    """A gradient that ignores the scale (keep only)."""

    def gradient(self, x, cotangent, *, seed, dtype, **params):
        out, _grad = super().gradient(x, cotangent, seed=seed, dtype=dtype, **params)
        return out, np.where(out.values == 0, 0.0, cotangent)


class LayerDropsTwice(OracleAdapter):
    """A layer whose own state (rate in force) drops at twice its rate; the function is right."""

    def make_layer(self, *, rank, seed, **params):
        return super().make_layer(rank=rank, seed=seed, **{**params, "rate": min(1.0, 2 * params["rate"])})


class ChannelHalvesShareMasks(OracleAdapter):
    """per_channel=True draws C/2 masks and repeats them: channels c and c + C/2 share one."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        out = super().call_functional(x, seed=seed, dtype=dtype, training=training, **params)
        values = out.values.copy()
        half = values.shape[1] // 2
        values[:, half:] = np.where(values[:, :half] == 0, 0.0, values[:, half:])
        values[:, :half] = np.where(values[:, half:] == 0, 0.0, values[:, :half])
        return Output(values, out.dtype)


class SampleScaleHalfPrecisionCount(OracleAdapter):
    """torchvision's float16 overflow moved to the per-sample count of scale="sample"."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        out = super().call_functional(x, seed=seed, dtype=dtype, training=training, **params)
        if dtype == "float16" and params.get("scale") == "sample" and x[0].size > 65504:
            return Output(np.zeros_like(out.values), dtype)
        return out


@pytest.mark.parametrize(
    ("adapter", "behaviour_id", "case_name"),
    [
        (SharedMaskByDefault(), "per-channel", "2d-independent"),
        (SharedMaskByDefault(), "expected-drop-fraction", "2d-14x14-k7"),
        (UncorrectedGamma(), "expected-drop-fraction", "2d-14x14-k7"),
        (UncorrectedGamma(), "block-clamp", "2d-4x4-k5"),
        (RowBoundUsesWidth(), "expected-drop-fraction", "2d-20x8-k3"),
        (HalfPrecisionCount(), "dtype", "f16-ten-million"),
        (NanForOversizedBlocks(), "block-clamp", "2d-4x4-k5"),
        (AcceptsAnyRate(), "rate-validation", "above-one"),
        (Float32Output(), "dtype", "f16"),
        (MaskedGradientMissing(), "gradient", "2d-batch"),
        (LayerDropsTwice(), "expected-drop-fraction", "2d-14x14-k7"),
        (LayerDropsTwice(), "block-clamp", "2d-4x4-k5"),
        (ChannelHalvesShareMasks(), "per-channel", "2d-independent"),
        (SampleScaleHalfPrecisionCount(), "dtype", "f16-sample-large"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, OracleAdapter) else str(v),
)
def test_known_bug_is_caught(adapter, behaviour_id, case_name):
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        run(adapter, behaviour_id, case_name)


def test_oracle_itself_passes_those_cases():
    for behaviour_id, case_name in [("per-channel", "2d-independent"), ("expected-drop-fraction", "2d-20x8-k3")]:
        run(OracleAdapter(), behaviour_id, case_name)
