"""ONNX export (jax2onnx) and data parallelism on 8 simulated devices; the slow checks."""

from __future__ import annotations

import pytest

from dropblock_jax._onnx_check import onnx_export_checks
from dropblock_jax._parallel_check import data_parallel_checks


@pytest.mark.slow
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_onnx_export_leaves_nothing_of_the_layer(rank):
    pytest.importorskip("jax2onnx")
    pytest.importorskip("onnxruntime")
    checks = onnx_export_checks(rank)
    failed = {name: outcome for name, outcome in checks.items() if outcome is not True}
    assert checks
    assert not failed


@pytest.mark.distributed
def test_sharded_calls_are_bit_identical_to_unsharded():
    checks = data_parallel_checks()
    failed = {name: outcome for name, outcome in checks.items() if outcome is not True}
    assert len(checks) > 10, checks
    assert not failed
