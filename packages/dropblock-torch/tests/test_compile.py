"""torch.compile(fullgraph=True) in training mode: forward, backward, and no recompilation."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
from torch._dynamo.testing import CompileCounterWithBackend

from dropblock_torch import DropBlock2d, LinearDropBlockSchedule
from dropblock_torch.functional import drop_block2d

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
    torch.manual_seed(0)
    y = compiled_layer(ones)
    y.sum().backward()
    kept = y != 0
    s = ones.numel() / int(kept.sum())
    assert torch.allclose(y[kept], torch.tensor(s))
    assert torch.allclose(ones.grad, torch.where(kept, s, 0.0))
    # It drops at the rate in force, which the schedule moves without recompiling: the
    # dropped fraction of 32 independent 16x16 maps is within 5 sd of the closed form
    # (oracle.expected_drop_fraction, and drop_fraction_variance / 32), 0.2590 +- 0.0136 at
    # p 0.3 and 0.0952 +- 0.0095 at p 0.1; the two ranges do not overlap.
    assert abs((1 - kept.float().mean().item()) - 0.2590) <= 5 * 0.0136
    layer.set_current_p(0.1)
    torch.manual_seed(1)
    dropped = (compiled_layer(torch.ones(8, 4, 16, 16)) == 0).float().mean().item()
    assert abs(dropped - 0.0952) <= 5 * 0.0095


def test_each_maximum_rate_compiles_to_its_own_graph() -> None:
    # Dynamo makes a float symbolic once it has seen a second value, but the maximum rate
    # sizes the sampler: two layers with different p, a new p set on a compiled layer and a
    # compiled function called with a new p must each trace their rate as a constant.
    torch._dynamo.reset()
    x = torch.randn(4, 8, 24, 24)
    layers = [DropBlock2d(p=0.1, block_size=3), DropBlock2d(p=0.2, block_size=3)]
    compiled = [torch.compile(layer, fullgraph=True, backend="eager") for layer in layers]
    function = torch.compile(lambda t, p: drop_block2d(t, p, 3), fullgraph=True, backend="eager")
    calls = [(layers[0], compiled[0]), (layers[1], compiled[1])]
    for p in (0.1, 0.3):
        calls.append((functools.partial(drop_block2d, p=p, block_size=3), functools.partial(function, p=p)))
    for eager, traced in calls:
        torch.manual_seed(0)
        expected = eager(x)
        torch.manual_seed(0)
        assert torch.equal(traced(x), expected)
    layers[0].p = 0.25
    torch.manual_seed(0)
    expected = layers[0](x)
    torch.manual_seed(0)
    assert torch.equal(compiled[0](x), expected)


def test_dynamic_true_compiles_once_per_shape() -> None:
    # dynamic=True makes float globals symbolic; the sampler's capacity must stay an int.
    torch._dynamo.reset()
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), DropBlock2d(p=0.2, block_size=3))
    compiled = torch.compile(model, dynamic=True, fullgraph=True, backend="eager")
    for n in (2, 3):
        x = torch.randn(n, 3, 12, 12)
        torch.manual_seed(0)
        expected = model(x)
        torch.manual_seed(0)
        assert torch.equal(compiled(x), expected)


def test_a_rate_just_below_one_is_not_rate_one_when_compiled() -> None:
    # The float32 buffer holds 1 - 1e-9 as 1.0; the compiled path clamps it to p in float64.
    torch._dynamo.reset()
    layer = DropBlock2d(p=1 - 1e-9, block_size=3)
    y = torch.compile(layer, fullgraph=True, backend="eager")(torch.ones(16, 64, 8, 8))
    assert (y != 0).any()


@pytest.mark.parametrize("dynamic", [None, True])
def test_a_tensor_rate_is_refused_by_name_when_compiled(dynamic) -> None:
    # Building the message must not read the tensor's value, which Dynamo does not know, and
    # must format a symbolic size (dynamic=True) without str() or repr(), which Dynamo cannot trace.
    # With fullgraph=True, Dynamo may wrap the ValueError in its own error, message included.
    torch._dynamo.reset()
    compiled = torch.compile(drop_block2d, fullgraph=True, dynamic=dynamic)
    got = r"`p`.*got an array or tensor \(torch\.Tensor\) of shape "
    with pytest.raises((ValueError, RuntimeError), match=got + r"\(\)"):
        compiled(torch.ones(2, 3, 8, 8), torch.tensor(0.1), 3)
    with pytest.raises((ValueError, RuntimeError), match=got + r"\(2,\)"):
        compiled(torch.ones(2, 3, 8, 8), torch.tensor([0.1, 0.2]), 3)


@pytest.mark.parametrize("dynamic", [None, True])
def test_a_compiled_function_recompiles_for_each_block_size(dynamic) -> None:
    # Dynamo makes an int argument symbolic after a second value (at once with
    # dynamic=True), but the block sizes the sampler: each one must trace as a constant.
    torch._dynamo.reset()
    compiled = torch.compile(drop_block2d, dynamic=dynamic, backend="eager")
    x = torch.randn(2, 4, 16, 16)
    for block_size in (3, 5, (2, 7)):
        torch.manual_seed(0)
        expected = drop_block2d(x, 0.2, block_size)
        torch.manual_seed(0)
        assert torch.equal(compiled(x, 0.2, block_size), expected)
