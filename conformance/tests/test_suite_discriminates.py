"""The suite must fail the bugs today's implementations have.

Each test wraps the oracle adapter with one known bug (from shared/research/anchors.md)
and checks that the behaviour meant to catch it raises.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from stand_ins import CompiledWith, RatesInForce, Replicas, assert_caught, case_id, run

from dropblock_conformance import oracle
from dropblock_conformance.adapter import Output
from dropblock_conformance.oracle_adapter import OracleAdapter
from dropblock_conformance.plugin import not_applicable
from dropblock_conformance.spec import behaviour
from dropblock_core import gamma_factor


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


class TrainsWhenModeIsLeftUnset(OracleAdapter):
    """A Keras layer that treats ``training=None`` as training (Keras's default is inference)."""

    def inference_calls(self, layer, x, *, dtype):
        return {"training=None": self.call_layer(layer, x, dtype=dtype, training=True)}


class RateMessageWithoutName(OracleAdapter):
    """A rate error that gives the range but not the parameter's name."""

    def make_layer(self, *, rank, seed, **params):
        try:
            return super().make_layer(rank=rank, seed=seed, **params)
        except ValueError:
            raise ValueError("value must lie in [0, 1]") from None


class RankMessageWithoutExpectedRank(OracleAdapter):
    """A wrong-rank error that prints only the shape it was given."""

    def call_layer(self, layer, x, *, dtype, training):
        if x.ndim != layer.rank + 2:
            raise ValueError(f"bad input of shape {x.shape} ({x.ndim}D)")
        return super().call_layer(layer, x, dtype=dtype, training=training)


class FunctionalAcceptsIntegers(OracleAdapter):
    """The layer rejects integer input, but the functional form casts it to float silently."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        dtype = "float32" if dtype in ("int32", "bool") else dtype
        return super().call_functional(x, seed=seed, dtype=dtype, training=training, **params)


class EmptyInputLosesDtype(OracleAdapter):
    """The functional form answers an empty input with a new float64 array (NumPy's default dtype)."""

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        out = super().call_functional(x, seed=seed, dtype=dtype, training=training, **params)
        return Output(out.values, "float64") if x.size == 0 else out


class CompiledDropsTwice(CompiledWith):
    """The compiled path draws at twice the rate fed to it; every output is still a legal sample."""

    def compiled_rate(self, rate, spatial, block):
        return min(1.0, 2 * rate)


class ReplicasShareOneMask(Replicas):
    """Every rank seeded alike draws the same mask (a plain per-rank generator)."""

    def replica_outputs(self, xs, params):
        first = super().replica_outputs(xs, params)[0]
        return [first, first]


class ReplicasScaleByTheGlobalBatch(Replicas):
    """The scale counts the kept elements of all replicas (an all-reduce), where the spec says the local batch."""

    def replica_outputs(self, xs, params):
        dropped = [out == 0 for out in super().replica_outputs(xs, params)]
        factor = np.float32(sum(d.size for d in dropped) / sum(int((~d).sum()) for d in dropped))
        return [np.where(d, 0.0, x * factor) for d, x in zip(dropped, xs, strict=True)]


class ShardsScaleLocallyInAGlobalView(Replicas):
    """JAX's global view, but each shard scales by its own batch: the global call is no longer one DropBlock."""

    name = "jax"


class NanRateInForceDropsEverything(RatesInForce):
    """JAX before the fix, under a bound of 1: a traced NaN rate failed `rate < 1` and dropped everything."""

    name = "jax"

    def rate_in_force(self, value, rate):
        return 1.0 if math.isnan(value) else super().rate_in_force(value, rate)


class RateInForceAboveTheBoundUnclipped(RatesInForce):
    """A rate in force above the configured rate is applied as it is (up to 1)."""

    def rate_in_force(self, value, rate):
        return min(max(value, 0.0), 1.0) if value > rate else super().rate_in_force(value, rate)


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
        (TrainsWhenModeIsLeftUnset(), "inference-identity", "2d-f16"),
        (RateMessageWithoutName(), "rate-validation", "above-one"),
        (RankMessageWithoutExpectedRank(), "shapes", "2d-layer-given-5d"),
        (RankMessageWithoutExpectedRank(), "shapes", "1d-layer-given-2d"),
        (FunctionalAcceptsIntegers(), "dtype", "int32-raises"),
        (EmptyInputLosesDtype(), "shapes", "2d-empty-channels"),
        (CompiledDropsTwice(), "compile", "2d"),
        (CompiledDropsTwice(), "compile", "1d-sample"),
        (CompiledDropsTwice(), "compile", "3d-shared"),
        (ReplicasShareOneMask(), "data-parallel", "engine"),
        (ReplicasScaleByTheGlobalBatch(), "data-parallel", "engine"),
        (ShardsScaleLocallyInAGlobalView(), "data-parallel", "engine"),
        (NanRateInForceDropsEverything(), "unchecked-rate-in-force", "2d-bound-one"),
        (RateInForceAboveTheBoundUnclipped(), "unchecked-rate-in-force", "2d-sparse"),
    ],
    ids=case_id,
)
def test_known_bug_is_caught(adapter, behaviour_id, case_name):
    assert_caught(adapter, behaviour_id, case_name)


def test_oracle_itself_passes_those_cases():
    for behaviour_id, case_name in [("per-channel", "2d-independent"), ("expected-drop-fraction", "2d-20x8-k3")]:
        run(OracleAdapter(), behaviour_id, case_name)
    for case_name in ("2d", "1d-sample", "3d-shared"):
        run(CompiledWith(), "compile", case_name)
    run(Replicas(), "data-parallel", "engine")
    for case_name in ("2d-sparse", "2d-bound-one", "1d"):
        run(RatesInForce(), "unchecked-rate-in-force", case_name)


def test_only_the_oracle_itself_skips_the_framework_behaviours():
    class ClaimsToBeNoFramework(OracleAdapter):
        """An implementation that would rather not be compiled, exported or replicated."""

        name = "torch"
        is_framework = False

    case = next(c for c in behaviour("compile").cases if c.name == "2d")
    assert not_applicable(OracleAdapter(), case)
    assert not_applicable(ClaimsToBeNoFramework(), case) is None
