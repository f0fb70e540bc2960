"""ONNX export (issue 6) and tf.distribute (issue 8), through the same code the conformance adapter runs."""

from __future__ import annotations

import pytest

from dropblock_tf.conformance_adapter import ADAPTER


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_onnx_export_leaves_no_trace_and_matches_keras(rank):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    report = ADAPTER.onnx_check(rank=rank)
    assert report.checks
    assert all(v is True for v in report.checks.values()), report.checks


@pytest.mark.distributed
def test_mirrored_strategy_on_two_logical_cpus():
    report = ADAPTER.data_parallel_check()
    assert set(report.checks) >= {"replica_masks_differ", "batch_scale_is_local", "fit_runs", "seeded_fit_reproducible"}
    assert all(v is True for v in report.checks.values()), report.checks
