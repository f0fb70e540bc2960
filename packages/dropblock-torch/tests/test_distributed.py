"""DistributedDataParallel with gloo on two local processes."""

from __future__ import annotations

import pytest
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dropblock_torch import DropBlock2d, LinearDropBlockSchedule
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


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_a_schedule_on_a_ddp_model_keeps_its_step_in_the_wrapped_modules_checkpoint(tmp_path) -> None:
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        model = nn.Sequential(nn.Conv2d(3, 4, 3), DropBlock2d(p=0.2, block_size=3))
        schedule = LinearDropBlockSchedule(DistributedDataParallel(model), total_steps=4)
        schedule.step()
        checkpoint = model.state_dict()  # what `ddp.module.state_dict()` saves
        assert int(checkpoint["dropblock_schedule_step"]) == 1
        assert float(model[1].p_current) == pytest.approx(0.05)
    finally:
        dist.destroy_process_group()
