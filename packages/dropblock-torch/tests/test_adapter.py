"""The conformance adapter runs the layer's own stages: stage 2 of stage 1 is the layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dropblock_torch._blocks import paint_dense, paint_sparse
from dropblock_torch._geometry import make_plan
from dropblock_torch.conformance_adapter import ADAPTER


@pytest.mark.parametrize(
    ("shape", "rate", "block", "per_channel"),
    [
        ((2, 3, 20, 14), 0.2, 3, True),  # sparse sampler
        ((2, 3, 7, 7), 1.0, 7, True),  # dense sampler
        ((2, 4, 30), 0.3, 4, False),
        ((1, 2, 5, 6, 7), 0.5, (2, 3, 2), True),
    ],
)
def test_stage_two_of_stage_one_is_the_layer(shape: tuple, rate: float, block: object, per_channel: bool) -> None:
    params = {"rate": rate, "block_size": block, "per_channel": per_channel, "scale": "batch"}
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=shape)
    layer_out = ADAPTER.call_functional(x, seed=5, dtype="float32", **params)
    seeds = ADAPTER.sample_seeds(shape, seed=5, **params)
    staged = ADAPTER.apply_seeds(
        x, seeds, dtype="float32", block_size=block, data_format="channels_first", scale="batch"
    )
    assert np.array_equal(layer_out.values, staged.values)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("shape", "block"), [((2, 3, 20), (4,)), ((2, 3, 9, 11), (3, 2)), ((2, 3, 5, 6, 7), (2, 3, 1))]
)
def test_sparse_and_dense_painters_agree(shape: tuple, block: tuple, channels_last: bool) -> None:
    plan = make_plan(shape, block, 0.3, per_channel=True)
    seeds = torch.rand(plan.grid, generator=torch.Generator().manual_seed(1)) < 0.1
    positions = torch.cat([torch.nonzero(seeds.reshape(-1)).reshape(-1), torch.tensor([plan.corners + 3])])
    sparse = paint_sparse(positions, plan, channels_last)
    dense = paint_dense(seeds, plan, channels_last)
    assert torch.equal(sparse, dense)
    assert sparse.stride() == dense.stride()
