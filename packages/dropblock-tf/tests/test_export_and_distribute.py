"""tf.distribute (issue 8), through the same code the conformance adapter runs (the suite judges the ONNX export)."""

from __future__ import annotations

import pytest

from dropblock_tf.conformance_adapter import ADAPTER


@pytest.mark.distributed
def test_mirrored_strategy_on_two_logical_cpus():
    report = ADAPTER.data_parallel_check()
    assert set(report.checks) >= {"replica_masks_differ", "batch_scale_is_local", "fit_runs", "seeded_fit_reproducible"}
    assert all(v is True for v in report.checks.values()), report.checks
