"""Subtler bugs a new implementation could have: the suite must fail each of them.

Found by auditing the suite with mutants: before the checks they pin were strengthened,
every one of these passed the behaviour whose statement it breaks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from stand_ins import CompiledWith, Replicas, assert_caught, case_id, run

from dropblock_conformance import oracle
from dropblock_conformance.adapter import Output
from dropblock_conformance.dtypes import round_to
from dropblock_conformance.oracle_adapter import OracleAdapter
from dropblock_core import clamp_block, gamma, gamma_factor


class SeedMutant(OracleAdapter):
    """The oracle with its seed grids drawn by ``mutate_seeds`` (layer, function and stage 1 alike)."""

    def mutate_seeds(self, rng, grid, g, layer):
        return rng.random(grid) < g

    def _grid(self, shape, params):
        data_format = params.get("data_format", "channels_first")
        per_channel = params.get("per_channel", True)
        grid, spatial, block = oracle.corner_grid(shape, params["block_size"], data_format, per_channel)
        return grid, gamma(params["rate"], spatial, block), data_format

    def _drop(self, x, rng, dtype, training, params, layer):
        if not training or params["rate"] == 0.0 or x.size == 0:
            return round_to(x, dtype)
        grid, g, data_format = self._grid(x.shape, params)
        seeds = oracle.from_channels_first(self.mutate_seeds(rng, grid, g, layer), data_format)
        return oracle.apply_seeds(
            x,
            seeds,
            dtype=dtype,
            block_size=params["block_size"],
            data_format=data_format,
            scale=params.get("scale", "batch"),
        )

    def call_layer(self, layer, x, *, dtype, training):
        super().call_layer(layer, x[:0], dtype=dtype, training=False)  # the oracle's input checks
        return Output(self._drop(x, layer.rng, dtype, training, layer.params, True), dtype)

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        super().call_functional(x[:0], seed=seed, dtype=dtype, training=False, **params)
        return Output(self._drop(x, np.random.default_rng(seed), dtype, training, params, False), dtype)

    def sample_seeds(self, shape, *, seed, **params):
        grid, g, data_format = self._grid(shape, params)
        return oracle.from_channels_first(self.mutate_seeds(np.random.default_rng(seed), grid, g, False), data_format)


class MasksStridedByHalfTheChannels(SeedMutant):
    """Map (n, c) takes random stream n * C/2 + c: sample n+1's first channels reuse sample n's last ones."""

    def mutate_seeds(self, rng, grid, g, layer):
        n, c = grid[:2]
        half = c // 2
        streams = rng.random(((n - 1) * half + c, *grid[2:])) < g
        return streams[np.arange(n)[:, None] * half + np.arange(c)[None, :]]


class LayerCopiesChannelHalves(SeedMutant):
    """The layer alone draws C/2 masks and uses each for channels c and c + C/2."""

    def mutate_seeds(self, rng, grid, g, layer):
        seeds = rng.random(grid) < g
        if layer:
            half = grid[1] // 2
            seeds[:, half : 2 * half] = seeds[:, :half]
        return seeds


class SamplerCappedAtTwoSd(SeedMutant):
    """A sparse sampler sized at mean + 2 sd seeds per map: the seeds past it are lost."""

    def mutate_seeds(self, rng, grid, g, layer):
        maps, corners = math.prod(grid[:2]), math.prod(grid[2:])
        cap = math.ceil(corners * g + 2 * math.sqrt(corners * g * (1 - g)))
        seeds = rng.random((maps, corners)) < g
        return (seeds & (np.cumsum(seeds, axis=1) <= cap)).reshape(grid)


class LayerKeepsItsFirstGamma(OracleAdapter):
    """A layer that computes gamma's factor on its first call and reuses it for every later shape."""

    def call_layer(self, layer, x, *, dtype, training):
        data_format = layer.params.get("data_format", "channels_first")
        spatial = oracle.spatial_shape(x.shape, data_format)
        block = oracle.clamped_block(spatial, layer.params["block_size"])
        factor = gamma_factor(spatial, block)
        first = layer.__dict__.setdefault("first_factor", factor)
        rate = layer.params["rate"]
        if 0 < rate < 1 and factor:
            rate = min(1.0, rate * first / factor)
        out = oracle.drop_block(x, rng=layer.rng, dtype=dtype, training=training, **{**layer.params, "rate": rate})
        return Output(out, dtype)


class ChecksInputsOnlyInTraining(OracleAdapter):
    """Inference and a rate of 0 return the input before any rank or dtype check."""

    def call_layer(self, layer, x, *, dtype, training):
        if not training or layer.params["rate"] == 0.0:
            return Output(np.asarray(x, dtype=np.float64), dtype)
        return super().call_layer(layer, x, dtype=dtype, training=training)

    def call_functional(self, x, *, seed, dtype, training=True, **params):
        if not training:
            return Output(np.asarray(x, dtype=np.float64), dtype)
        return super().call_functional(x, seed=seed, dtype=dtype, training=training, **params)


class NamesEveryRank(OracleAdapter):
    """A wrong-rank message that lists every rank the library has, not the one expected."""

    def call_layer(self, layer, x, *, dtype, training):
        if x.ndim != layer.rank + 2:
            raise ValueError(f"DropBlock takes a 3D, 4D or 5D input, got shape {x.shape}")
        return super().call_layer(layer, x, dtype=dtype, training=training)


class KerasWithoutTrainingNone(OracleAdapter):
    """A Keras stand-in whose adapter leaves out the training=None call the statement promises."""

    name = "tf"


class InferenceAddsZero(OracleAdapter):
    """Inference returns ``x + 0.0``: equal values, but -0.0 comes back as +0.0."""

    def call_layer(self, layer, x, *, dtype, training):
        out = super().call_layer(layer, x, dtype=dtype, training=training)
        return out if training else Output(out.values + 0.0, dtype)


class GradientIgnoresRateOne(OracleAdapter):
    """The autograd path returns its input and the upstream gradient at rate 1."""

    def gradient(self, x, cotangent, *, seed, dtype, **params):
        if params["rate"] == 1.0:
            return Output(round_to(x, dtype), dtype), round_to(cotangent, dtype)
        return super().gradient(x, cotangent, seed=seed, dtype=dtype, **params)


class CompiledForSquareMaps(CompiledWith):
    """The compiled path reads one spatial size and takes the map for a square."""

    def compiled_rate(self, rate, spatial, block):
        if rate in (0.0, 1.0):
            return rate
        square = (spatial[0],) * len(spatial)
        return min(1.0, rate * gamma_factor(square, clamp_block(square, block)) / gamma_factor(spatial, block))


class CompiledRateInFloat32(CompiledWith):
    """The compiled path keeps the rate in float32, where 1 - 1e-9 is 1."""

    def compiled_rate(self, rate, spatial, block):
        return float(np.float32(rate))


class ReplicaInInference(Replicas):
    """Replica 1's copy of the layer never got the training flag: it drops nothing."""

    def replica_outputs(self, xs, params):
        return [*super().replica_outputs(xs, params)[:1], xs[1].copy()]


class ReplicasLostTheRate(Replicas):
    """The replicas' layers were rebuilt with another rate (0.1 for 0.3)."""

    def replica_outputs(self, xs, params):
        return super().replica_outputs(xs, {**params, "rate": 0.1})


class ReplicasShareAllButTheLastSample(Replicas):
    """The replicas share every sample's mask but the last one's."""

    def replica_outputs(self, xs, params):
        first, other = (out == 0 for out in super().replica_outputs(xs, params))
        outputs = []
        for dropped in (first, np.concatenate([first[:-1], other[-1:]])):
            factor = np.float32(dropped.size) / np.float32((~dropped).sum())
            outputs.append(np.where(dropped, 0.0, factor.astype(np.float64)))
        return outputs


class TwoOfThreeReplicasAlike(Replicas):
    """Three replicas, the last two seeded alike."""

    count = 3

    def replica_outputs(self, xs, params):
        return [self.call_functional(x, seed=min(r, 1), dtype="float32", **params).values for r, x in enumerate(xs)]


@pytest.mark.parametrize(
    ("adapter", "behaviour_id", "case_name"),
    [
        (MasksStridedByHalfTheChannels(), "per-channel", "2d-all-masks-distinct"),
        (LayerCopiesChannelHalves(), "per-channel", "2d-independent"),
        (SamplerCappedAtTwoSd(), "valid-region-seeds", "1d-50-k5"),
        (LayerKeepsItsFirstGamma(), "expected-drop-fraction", "2d-14x14-k7"),
        (ChecksInputsOnlyInTraining(), "shapes", "2d-layer-given-3d"),
        (ChecksInputsOnlyInTraining(), "dtype", "int32-raises"),
        (InferenceAddsZero(), "inference-identity", "2d-f16"),
        (NamesEveryRank(), "shapes", "2d-layer-given-3d"),
        (KerasWithoutTrainingNone(), "inference-identity", "2d-f16"),
        (GradientIgnoresRateOne(), "gradient", "2d-rate-one"),
        (CompiledForSquareMaps(), "compile", "2d"),
        (CompiledRateInFloat32(), "compile", "2d-near-one"),
        (ReplicaInInference(), "data-parallel", "engine"),
        (ReplicasLostTheRate(), "data-parallel", "engine"),
        (ReplicasShareAllButTheLastSample(), "data-parallel", "engine"),
        (TwoOfThreeReplicasAlike(), "data-parallel", "engine"),
    ],
    ids=case_id,
)
def test_subtle_bug_is_caught(adapter, behaviour_id, case_name):
    assert_caught(adapter, behaviour_id, case_name)


@pytest.mark.parametrize(
    ("adapter", "behaviour_id", "case_name"),
    [
        (SeedMutant(), "per-channel", "2d-all-masks-distinct"),
        (SeedMutant(), "valid-region-seeds", "1d-50-k5"),
        (CompiledWith(), "compile", "2d"),
        (CompiledWith(), "compile", "2d-near-one"),
        (Replicas(), "data-parallel", "engine"),
    ],
    ids=case_id,
)
def test_the_correct_stand_ins_pass(adapter, behaviour_id, case_name):
    run(adapter, behaviour_id, case_name)
