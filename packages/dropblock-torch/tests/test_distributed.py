"""DistributedDataParallel with gloo on two local processes."""

from __future__ import annotations

import pytest
import torch.distributed as dist

from dropblock_torch._ddp_check import data_parallel_run

pytestmark = pytest.mark.distributed


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ddp_step_in_sync_and_one_output_per_rank() -> None:
    # The conformance suite's data-parallel case judges the ranks' masks and scales.
    run = data_parallel_run(0.3, 3)
    assert run.checks
    assert all(v is True for v in run.checks.values()), run.checks
    assert len(run.outputs) == 2
    assert all(out.shape == x.shape for x, out in zip(run.inputs, run.outputs, strict=True))


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ddp_under_torch_compile() -> None:
    run = data_parallel_run(0.3, 3, with_compile=True)
    assert {"compiled_gradients_in_sync", "compiled_masks_differ_across_ranks"} <= set(run.checks)
    assert all(v is True for v in run.checks.values()), run.checks
