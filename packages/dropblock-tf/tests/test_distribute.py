"""tf.distribute (issue 8), through the same code the conformance adapter runs."""

from __future__ import annotations

import pytest

from dropblock_tf.conformance_adapter import ADAPTER


@pytest.mark.distributed
def test_mirrored_strategy_on_two_logical_cpus():
    # The conformance suite's data-parallel case judges the replicas' masks and scales.
    run = ADAPTER.data_parallel_run(rate=0.3, block_size=3, scale="batch", per_channel=True)
    assert set(run.checks) >= {"two_replicas", "successive_steps_differ", "fit_runs", "seeded_fit_reproducible"}
    assert all(v is True for v in run.checks.values()), run.checks
    assert len(run.outputs) == 2
