"""The conformance adapter returns what the suite reads (without importing the suite)."""

from __future__ import annotations

import numpy as np

from dropblock_jax.conformance_adapter import ADAPTER


def test_contract_basics():
    assert ADAPTER.name == "jax"
    assert not ADAPTER.expected_failures
    x = 1.0 + np.random.default_rng(0).random((2, 3, 10, 10))
    params = {"rate": 0.2, "block_size": 3, "data_format": "channels_first", "per_channel": True, "scale": "batch"}
    seeds = ADAPTER.sample_seeds(x.shape, seed=4, **params)
    assert seeds.shape == (2, 3, 8, 8)
    assert seeds.dtype == bool
    layer_free = ADAPTER.call_functional(x, seed=4, dtype="float32", **params)
    stage2 = ADAPTER.apply_seeds(x, seeds, dtype="float32", block_size=3, data_format="channels_first", scale="batch")
    assert np.array_equal(layer_free.values, stage2.values), "stage 1 + stage 2 == the functional call"
    assert layer_free.dtype == "float32"
    out = ADAPTER.call_layer(ADAPTER.make_layer(rank=2, seed=1, **params), x, dtype="bfloat16", training=True)
    assert out.dtype == "bfloat16"
    result = ADAPTER.compile_check(x, [0.0, 0.1, 1.0], seed=0, **{k: v for k, v in params.items() if k != "rate"})
    assert result.compilations == 1
    assert len(result.outputs) == 3
