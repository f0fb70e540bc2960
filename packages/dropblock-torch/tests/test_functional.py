"""The functional forms: arguments, identities, dtypes, layouts, in-place and autograd."""

from __future__ import annotations

import functools
import math
import sys

import pytest
import torch
from conftest import generator

import dropblock_torch._blocks
from dropblock_torch import DropBlock2d
from dropblock_torch import functional as F

FUNCS = {1: F.drop_block1d, 2: F.drop_block2d, 3: F.drop_block3d}
SHAPES = {1: (2, 3, 40), 2: (2, 3, 16, 12), 3: (2, 3, 6, 8, 10)}


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_eval_and_rate_zero_return_the_input(rank: int, device: torch.device) -> None:
    x = torch.randn(SHAPES[rank], device=device)
    assert FUNCS[rank](x, 0.5, 3, training=False) is x
    assert FUNCS[rank](x, 0.0, 3) is x


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_rate_one_gives_finite_zeros(dtype: torch.dtype, device: torch.device) -> None:
    x = torch.full((2, 3, 9, 9), float("inf"), dtype=dtype, device=device)
    y = F.drop_block2d(x, 1.0, 4)
    assert y.dtype == dtype
    assert bool((y == 0).all())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 1.5}, r"`p`.*\[0, 1\]"),
        ({"p": -0.1}, r"`p`.*\[0, 1\]"),
        ({"p": float("nan")}, r"`p`"),
        ({"p": True}, r"`p`"),
        ({"p": torch.tensor(0.1)}, r"`p`.*float\(\)\), got an array or tensor \(torch\.Tensor\) of shape \(\)"),
        ({"p": torch.tensor([0.1])}, r"`p`: expected a real number in \[0, 1\], got .* of shape \(1,\)"),
        ({"block_size": 0}, "block_size"),
        ({"block_size": (3, 3, 3)}, "block_size"),
        ({"scale": "global"}, "scale"),
        ({"per_channel": 1}, "per_channel"),
        ({"inplace": "no"}, "`inplace`.*True or False"),
        ({"inplace": None}, "`inplace`"),
        ({"training": "no"}, "`training`.*True or False"),
        ({"training": None}, "`training`"),
        ({"training": 0}, "`training`"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs: dict, message: str) -> None:
    args = {"p": 0.1, "block_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        F.drop_block2d(torch.ones(1, 1, 4, 4), args.pop("p"), args.pop("block_size"), **args)


@pytest.mark.parametrize("training", [True, False])
def test_generator_must_be_a_torch_generator(training: bool) -> None:
    # A ValueError, as for every other argument; the module checks it in eval mode too.
    with pytest.raises(ValueError, match=r"`generator`: expected a torch\.Generator or None, got 0\."):
        F.drop_block2d(torch.ones(1, 1, 4, 4), 0.1, 3, training=training, generator=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`generator`"):
        DropBlock2d(0.1, 3).train(training)(torch.ones(1, 1, 4, 4), generator=0)  # type: ignore[arg-type]


def test_float8_inputs_are_refused_early() -> None:
    with pytest.raises(TypeError, match=r"float16, bfloat16, float32 or float64\), got dtype torch\.float8_e4m3fn"):
        F.drop_block2d(torch.ones(1, 1, 4, 4).to(torch.float8_e4m3fn), 0.1, 3)


def test_vmap_of_a_call_that_drops_nothing_is_the_identity() -> None:
    x = torch.ones(2, 2, 3, 8, 8)
    assert torch.equal(torch.func.vmap(lambda t: F.drop_block2d(t, 0.0, 3))(x), x)


def test_vmap_is_refused_with_a_message_that_says_why() -> None:
    with pytest.raises(RuntimeError, match=r"torch\.func\.vmap"):
        torch.func.vmap(lambda t: F.drop_block2d(t, 0.2, 3))(torch.ones(2, 2, 3, 8, 8))


def test_input_type_and_rank_errors() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        F.drop_block2d(torch.ones(1, 1, 4, 4, dtype=torch.int32), 0.1, 3)
    with pytest.raises(ValueError, match="4D input"):
        F.drop_block2d(torch.ones(1, 4, 4), 0.1, 3)
    with pytest.raises(ValueError, match="3D input"):
        F.drop_block1d(torch.ones(1, 1, 4, 4), 0.1, 3, training=False)


def test_empty_batch() -> None:
    x = torch.ones(0, 3, 8, 8)
    assert F.drop_block2d(x, 0.3, 3).shape == x.shape


def test_generator_makes_a_call_reproducible(device: torch.device) -> None:
    x = torch.randn(4, 8, 20, 20, device=device)
    a = F.drop_block2d(x, 0.2, 5, generator=generator(device, 7))
    b = F.drop_block2d(x, 0.2, 5, generator=generator(device, 7))
    c = F.drop_block2d(x, 0.2, 5, generator=generator(device, 8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(3)
    d = F.drop_block2d(x, 0.2, 5)
    e = F.drop_block2d(x, 0.2, 5)
    assert not torch.equal(d, e), "successive calls on the global generator must differ"


def test_output_is_x_times_batch_scale_or_zero(device: torch.device) -> None:
    x = torch.rand(4, 8, 20, 20, device=device, dtype=torch.float64) + 0.5
    y = F.drop_block2d(x, 0.2, 5, generator=generator(device))
    dropped = y == 0
    s = x.numel() / int((~dropped).sum())
    assert torch.equal(y[~dropped], x[~dropped] * s)


def test_scale_sample_and_none(device: torch.device) -> None:
    x = torch.ones(4, 8, 20, 20, device=device, dtype=torch.float64)
    y = F.drop_block2d(x, 0.3, 5, scale="sample", generator=generator(device))
    for sample in y:
        kept = sample != 0
        assert torch.allclose(sample[kept], torch.tensor(sample.numel() / int(kept.sum()), dtype=x.dtype))
    z = F.drop_block2d(x, 0.3, 5, scale="none", generator=generator(device))
    assert set(z.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_one_sample_scales_alike_per_sample_and_per_batch(dtype: torch.dtype, device: torch.device) -> None:
    # With one sample, "sample" and "batch" are the same quotient; both must round it once
    # into x's dtype (the eager CPU path multiplies by a 0-dim float32 s for "sample").
    x = torch.randn(1, 6, 14, 14, device=device).to(dtype)
    by_sample = F.drop_block2d(x, 0.3, 3, scale="sample", generator=generator(device))
    by_batch = F.drop_block2d(x, 0.3, 3, scale="batch", generator=generator(device))
    assert bool((by_batch == 0).any()), "nothing was dropped: the case tests nothing"
    assert by_sample.dtype == dtype
    assert torch.equal(by_sample, by_batch)


def test_shared_mask_across_channels(device: torch.device) -> None:
    y = F.drop_block2d(torch.ones(3, 5, 16, 16, device=device), 0.3, 3, per_channel=False)
    assert bool(((y == 0) == (y[:, :1] == 0)).all())


def test_per_channel_masks_are_drawn_per_channel(device: torch.device) -> None:
    # 15 maps at p 0.3: two identical masks are all but impossible (each holds about 8.5
    # seeds among 196 corners), so every channel of a sample must differ from the others.
    y = F.drop_block2d(torch.ones(3, 5, 16, 16, device=device), 0.3, 3, generator=generator(device, 4))
    masks = (y == 0).reshape(15, -1)
    assert all(not torch.equal(masks[i], masks[j]) for i in range(15) for j in range(i))


@pytest.mark.parametrize(("rank", "memory_format"), [(2, torch.channels_last), (3, torch.channels_last_3d)])
def test_channels_last_is_preserved_with_the_same_values(rank: int, memory_format: torch.memory_format) -> None:
    x = torch.randn(SHAPES[rank])
    xc = x.contiguous(memory_format=memory_format)
    for p in (0.2, 1.0):  # sparse and dense paths
        y = FUNCS[rank](x, p, 3, generator=generator("cpu"))
        yc = FUNCS[rank](xc, p, 3, generator=generator("cpu"))
        assert yc.is_contiguous(memory_format=memory_format)
        assert torch.equal(y, yc)


def test_inplace_returns_the_input_with_the_out_of_place_values(device: torch.device) -> None:
    x = torch.randn(2, 4, 16, 16, device=device)
    expected = F.drop_block2d(x, 0.3, 3, generator=generator(device))
    x_copy = x.clone()
    y = F.drop_block2d(x_copy, 0.3, 3, inplace=True, generator=generator(device))
    assert y is x_copy
    assert torch.equal(y, expected)


def test_inplace_on_a_non_leaf_keeps_autograd() -> None:
    w = torch.ones(1, requires_grad=True)
    x = torch.randn(2, 4, 16, 16) * w
    y = F.drop_block2d(x, 0.3, 3, inplace=True, generator=generator("cpu"))
    y.sum().backward()
    assert w.grad is not None


LAYOUTS = {
    "2d-contiguous": (2, lambda x: x),
    "2d-channels-last": (2, lambda x: x.to(memory_format=torch.channels_last)),
    "3d-channels-last": (3, lambda x: x.to(memory_format=torch.channels_last_3d)),
    "1d-channels-innermost": (1, lambda x: x.transpose(1, 2).contiguous().transpose(1, 2)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_output_may_be_modified_in_place_downstream(layout: str) -> None:
    # timm-style Conv -> BN -> DropBlock -> ReLU(inplace=True): the output must not be a view.
    rank, arrange = LAYOUTS[layout]
    x = arrange(torch.rand(SHAPES[rank]) - 0.5)
    grads = []
    for inplace_relu in (False, True):
        leaf = x.detach().requires_grad_()
        y = FUNCS[rank](leaf * 1.0, 0.3, 3, generator=generator("cpu"))
        assert y._base is None
        torch.nn.functional.relu(y, inplace=inplace_relu).sum().backward()
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtype_is_kept(dtype: torch.dtype) -> None:
    y = F.drop_block2d(torch.ones(2, 3, 12, 12, dtype=dtype), 0.2, 3)
    assert y.dtype == dtype


@pytest.mark.parametrize("eager_cpu", [True, False], ids=["eager-cpu", "accelerator-path"])
def test_float16_large_tensor_keeps_its_mean(monkeypatch: pytest.MonkeyPatch, eager_cpu: bool) -> None:
    # 10^7 elements: a float16 count would overflow (torchvision's bug), on either path (the
    # one accelerators and torch.compile take is forced here on the CPU). On ones the mean is
    # kept/numel * s, s = numel/kept rounded to float16 (2**-11 relative) after float32 (2**-24).
    monkeypatch.setattr(dropblock_torch._blocks, "eager_cpu", lambda device: eager_cpu)
    x = torch.ones(10, 100, 100, 100, dtype=torch.float16)
    y = F.drop_block2d(x, 0.1, 7, generator=generator("cpu"))
    assert bool((y == 0).any())
    assert abs(y.double().mean().item() - 1.0) <= 2**-11 + 2**-24


def test_gradient_is_keep_times_scale(device: torch.device) -> None:
    x = (torch.rand(2, 4, 16, 16, device=device) + 0.5).requires_grad_()
    g = torch.randn_like(x)
    y = F.drop_block2d(x, 0.3, 3, generator=generator(device))
    y.backward(g)
    keep = y != 0
    s = x.numel() / int(keep.sum())
    assert torch.allclose(x.grad, torch.where(keep, g * s, 0.0))


def _seeded_drop_block(x: torch.Tensor) -> torch.Tensor:
    """The same mask at every call (gradcheck evaluates the function many times)."""
    return F.drop_block2d(x, 0.1, 3, generator=generator("cpu"))


@pytest.mark.parametrize("shape", [(2, 2, 12, 12), (2, 3, 5, 5)], ids=["sparse", "dense"])
def test_double_backward(shape: tuple[int, ...]) -> None:
    # Gradient penalties and meta-learning differentiate the gradient (create_graph=True).
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    sparse = type(_seeded_drop_block(x).grad_fn).__name__ == "ZeroBlocksBackward"
    assert sparse == (shape == (2, 2, 12, 12)), "the case no longer takes the path it names"
    assert torch.autograd.gradgradcheck(_seeded_drop_block, (x,))
    # The gradient of a weighted gradient norm, d/dx |grad_x (y * w).sum()|^2 with y = x * keep * s,
    # is 0 (the gradient does not depend on x); d/dw is 2 * (keep * s)^2 * w.
    w = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    y = _seeded_drop_block(x)
    (g,) = torch.autograd.grad((y * w).sum(), x, create_graph=True)
    keep_s = torch.where(y != 0, y / x, 0.0).detach()
    assert torch.allclose(g, keep_s * w)
    (dw,) = torch.autograd.grad(g.square().sum(), w)
    assert torch.allclose(dw, 2 * keep_s.square() * w)


def test_torch_func_grad_and_forward_mode_ad() -> None:
    x = torch.rand(2, 2, 12, 12, dtype=torch.float64) + 0.5
    y = _seeded_drop_block(x)
    keep_s = torch.where(y != 0, y / x, 0.0)
    w = torch.randn_like(x)
    grad = torch.func.grad(lambda t: (_seeded_drop_block(t) * w).sum())(x)
    assert torch.allclose(grad, keep_s * w)
    out, tangent = torch.func.jvp(_seeded_drop_block, (x,), (w,))
    assert torch.equal(out, y)
    assert torch.allclose(tangent, keep_s * w)


def test_only_a_one_byte_mask_is_saved_for_backward() -> None:
    x = torch.randn(4, 16, 28, 28, requires_grad=True)
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = F.drop_block2d(x, 0.1, 7)
    y.sum().backward()
    saved_bytes = sum(t.numel() * t.element_size() for t in saved)
    assert saved_bytes <= x.numel() + 64, f"saved {saved_bytes} bytes for {x.numel()} elements"


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_no_host_synchronisation_in_the_hot_path(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    # The meta device takes the accelerators' path: nothing reads a value back to the host.
    # The eager CPU path reads three values (plain loads there, not syncs) and nothing else:
    # the seed count in block_rows, the dropped count in scale_factor and the module's rate
    # in force in rate_in_force.
    allowed = {"block_rows", "scale_factor", "rate_in_force"} if device == "cpu" else set()
    module = DropBlock2d(0.3, 3).to(device)  # moving a module is not the hot path
    for name in ("item", "tolist", "__bool__", "__int__", "__float__"):
        original = getattr(torch.Tensor, name)

        def guarded(self: torch.Tensor, *args: object, _original: object = original, **kwargs: object) -> object:
            caller = sys._getframe(1).f_code.co_name
            if caller not in allowed:
                raise AssertionError(f"host synchronisation in the hot path (from {caller})")
            return _original(self, *args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(torch.Tensor, name, guarded)
    x = torch.randn(2, 4, 16, 16, device=device, requires_grad=True)
    for layer in (functools.partial(F.drop_block2d, p=0.3, block_size=3), module):
        y = layer(x)
        y.backward(torch.ones_like(y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_eager_cpu_output_owns_exactly_its_elements(dtype: torch.dtype) -> None:
    # Empty seed slots are cut off rather than painted past the mask, so the output (and the
    # gradient) is allocated at the input's size: the allocator can reuse same-size blocks.
    x = torch.randn(4, 8, 20, 20, dtype=dtype, requires_grad=True)
    y = F.drop_block2d(x, 0.2, 3, generator=torch.Generator().manual_seed(0))
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    for t in (y, gx):
        assert t.untyped_storage().nbytes() == x.numel() * x.element_size()


def test_runs_on_the_meta_device() -> None:
    # Nothing assumes CPU: the sampler allocates on the input's device.
    y = F.drop_block2d(torch.empty(2, 4, 16, 16, device="meta"), 0.3, 3)
    assert y.device.type == "meta"
    assert y.shape == (2, 4, 16, 16)


def test_seed_count_matches_the_binomial() -> None:
    # 5 sigma of Binomial(corners, gamma), over the whole batch (fixed seed).
    shape, block, p = (16, 32, 28, 28), 7, 0.1
    x = torch.ones(shape, dtype=torch.float64)
    from dropblock_torch._geometry import make_plan
    from dropblock_torch.functional import sample_seeds

    plan = make_plan(shape, (block, block), p, per_channel=True)
    positions = sample_seeds(plan, p, x.device, generator("cpu", 11))
    count = int((positions < plan.corners).sum())
    g = p * 28 * 28 / (block * block * 22 * 22)  # eq. 1 written out, not the gamma under test
    mean, sd = plan.corners * g, math.sqrt(plan.corners * g * (1 - g))
    assert abs(count - mean) <= 5 * sd
    assert count < plan.capacity


@pytest.mark.parametrize("training", [True, False])
def test_fx_records_the_functional_api_as_one_call(training: bool) -> None:
    # As for F.dropout: through __torch_function__, whatever name the caller holds it by
    # (torch.fx.wrap would only catch calls through the defining module's global name).
    drop = F.drop_block2d

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return drop(x, 0.2, 3, training=self.training).relu()

    net = Net().train(training)
    traced = torch.fx.symbolic_trace(net)
    calls = [node.target for node in traced.graph.nodes if node.op == "call_function"]
    assert calls == [F.drop_block2d], calls
    x = torch.randn(2, 3, 12, 12)
    torch.manual_seed(0)
    expected = net(x)
    torch.manual_seed(0)
    assert torch.equal(traced(x), expected)


# 2048 independent maps (per-channel masks) on ones. mean and sd are the conformance oracle's
# closed forms (expected_drop_fraction; sqrt(drop_fraction_variance / 2048)), written out so
# that a wrong gamma or sampler here cannot move them: within 5 sd.
CLOSED_FORMS = [
    (0.5, (16, 16), (3, 3), 0.39262, 0.00181),
    (0.1, (14, 14), (7, 7), 0.09294, 0.00307),
    (0.25, (12, 20), (5, 3), 0.21726, 0.00212),
    (0.2, (4, 9), (7, 7), 0.18647, 0.00744),  # the block clamped to (4, 7)
]


@pytest.mark.parametrize(("p", "spatial", "block", "mean", "sd"), CLOSED_FORMS)
def test_dropped_fraction_matches_the_closed_form(
    p: float, spatial: tuple, block: tuple, mean: float, sd: float
) -> None:
    y = F.drop_block2d(torch.ones(64, 32, *spatial), p, block, generator=generator("cpu", 3))
    assert abs((y == 0).double().mean().item() - mean) <= 5 * sd
