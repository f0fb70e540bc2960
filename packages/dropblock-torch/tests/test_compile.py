"""torch.compile(fullgraph=True) in training mode: forward, backward, and no recompilation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch._dynamo.testing import CompileCounterWithBackend

from dropblock_torch import DropBlock2d, LinearDropBlockSchedule

pytestmark = pytest.mark.slow


def test_compiled_training_step_and_schedule_do_not_recompile() -> None:
    torch._dynamo.reset()
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), DropBlock2d(p=0.3, block_size=3), nn.Conv2d(8, 2, 1))
    schedule = LinearDropBlockSchedule(model, total_steps=4, start=0.1)
    counter = CompileCounterWithBackend("inductor")
    compiled = torch.compile(model, backend=counter, fullgraph=True)
    x = torch.randn(4, 3, 12, 12)
    for _ in range(5):
        out = compiled(x)
        out.square().mean().backward()
        assert model[0].weight.grad is not None
        assert torch.isfinite(model[0].weight.grad).all()
        model.zero_grad()
        schedule.step()
    assert counter.frame_count == 1, f"compiled {counter.frame_count} times"
    # The compiled layer itself scales its kept values like eager and backpropagates keep * s.
    layer = DropBlock2d(p=0.3, block_size=3).train()
    compiled_layer = torch.compile(layer, fullgraph=True)
    ones = torch.ones(8, 4, 16, 16, requires_grad=True)
    y = compiled_layer(ones)
    y.sum().backward()
    kept = y != 0
    s = ones.numel() / int(kept.sum())
    assert torch.allclose(y[kept], torch.tensor(s))
    assert torch.allclose(ones.grad, torch.where(kept, s, 0.0))
    assert 0.15 < 1 - kept.float().mean().item() < 0.45
