"""DistributedDataParallel with gloo on two local processes."""

from __future__ import annotations

import pytest
import torch.distributed as dist

from dropblock_torch._ddp_check import data_parallel_check

pytestmark = pytest.mark.distributed


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ddp_gradients_in_sync_and_masks_independent_per_rank() -> None:
    checks = data_parallel_check()
    assert checks
    assert all(v is True for v in checks.values()), checks


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ddp_under_torch_compile() -> None:
    checks = data_parallel_check(with_compile=True)
    assert checks
    assert all(v is True for v in checks.values()), checks
