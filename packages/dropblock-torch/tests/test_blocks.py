"""Stage 2 internals: the eager CPU row painter, the per-element painter and the byte count agree."""

from __future__ import annotations

import pytest
import torch

import dropblock_torch._blocks
from dropblock_torch import functional
from dropblock_torch._blocks import _count_bytes, block_rows, paint_rows, scale_factor
from dropblock_torch._geometry import make_plan
from dropblock_torch.functional import drop_block2d


def _positions(plan: object, seed: int) -> torch.Tensor:
    seeds = torch.rand(plan.grid, generator=torch.Generator().manual_seed(seed)) < 0.2  # type: ignore[attr-defined]
    found = torch.nonzero(seeds.reshape(-1)).reshape(-1)
    return torch.cat([found, torch.tensor([plan.corners, plan.corners + 7])])  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("shape", "block"), [((2, 3, 20), (4,)), ((2, 3, 9, 11), (3, 2)), ((2, 3, 5, 6, 7), (2, 3, 2))]
)
def test_compiled_painter_matches_eager_row_painter(shape: tuple, block: tuple, channels_last: bool) -> None:
    # Eager CPU fills whole rows through an overlapping view; compiled code fills element by element.
    plan = make_plan(shape, block, 0.3, per_channel=True)
    positions = _positions(plan, 3)

    def paint(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(paint_rows(block_rows(p, plan, channels_last), plan, channels_last))  # type: ignore[return-value]

    eager = paint(positions)
    compiled = torch.compile(paint, fullgraph=True)(positions)
    assert torch.equal(eager[0], compiled[0])
    assert int(eager[1]) == int(compiled[1]) == int(eager[0].sum())


@pytest.mark.parametrize("channels_last", [False, True])
def test_block_rows_list_each_blocks_rows_together(channels_last: bool) -> None:
    # Seed by seed, so that the fills sweep the buffer once rather than once per row offset.
    plan = make_plan((2, 3, 5, 6, 7), (2, 3, 2), 0.3, per_channel=True)
    positions = _positions(plan, 3)
    rows = block_rows(positions, plan, channels_last).view(-1, 2 * 3)
    assert rows.shape[0] == int((positions < plan.corners).sum())
    steps = rows - rows[:, :1]
    assert torch.equal(steps, steps[:1].expand_as(steps))  # the same offsets below every corner
    assert bool(torch.all(steps[0, 1:] > steps[0, :-1]))
    if not channels_last:  # corners ascend with the positions in a channels-first mask
        assert bool(torch.all(rows[1:, 0] > rows[:-1, 0]))


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 1.0])
def test_byte_count_is_exact(fraction: float) -> None:
    # Up to 255 ones per byte lane: the full mask is the worst case for carries.
    flags = torch.rand(3 * 2040, generator=torch.Generator().manual_seed(0)) < fraction
    assert int(_count_bytes(flags)) == int(flags.sum())


@pytest.mark.parametrize(
    ("shape", "block", "p"),
    [((4, 8, 32, 32), 3, 0.1), ((2, 3, 20, 20), 1, 0.3)],
    ids=["rows-saved", "seeds-saved"],
)
def test_backward_is_keep_times_scale_whichever_indices_are_saved(shape: tuple, block: int, p: float) -> None:
    # Backward reuses the block rows when they fit in a byte per element, else recomputes them.
    x = torch.ones(shape, requires_grad=True)
    y = drop_block2d(x, p, block, generator=torch.Generator().manual_seed(2))
    y.backward(torch.full(shape, 3.0))
    kept = y.detach() != 0
    s = x.numel() / int(kept.sum())
    assert torch.allclose(y.detach(), torch.where(kept, s, 0.0))
    assert torch.allclose(x.grad, torch.where(kept, 3.0 * s, 0.0))


_SHAPES = {"1d": (2, 3, 20), "2d": (2, 4, 16, 16), "3d": (2, 3, 6, 7, 8)}
_MEMORY_FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}
#: The function and block of each rank (N, C, *S).
_BY_RANK = {3: (functional.drop_block1d, 4), 4: (functional.drop_block2d, 3), 5: (functional.drop_block3d, (2, 3, 2))}


def _input(case: str) -> torch.Tensor:
    """An input in one of the layouts the painter handles: ``<rank>d``, then ``-bf16`` or ``-channels-last``."""
    rank, _, variant = case.partition("-")
    x = torch.randn(_SHAPES[rank], generator=torch.Generator().manual_seed(1))
    if variant == "bf16":
        return x.to(torch.bfloat16)
    if variant != "channels-last":
        return x
    if x.dim() == 3:  # a (N, C, L) tensor stored (N, L, C): no memory format of its own
        return x.transpose(1, 2).contiguous().transpose(1, 2)
    return x.to(memory_format=_MEMORY_FORMATS[x.dim()])


@pytest.mark.parametrize("scale", ["batch", "sample", "none"])
@pytest.mark.parametrize(
    "case", ["1d", "2d", "2d-bf16", "3d", "1d-channels-last", "2d-channels-last", "3d-channels-last"]
)
def test_accelerator_eager_path_matches_the_cpu_one(monkeypatch: pytest.MonkeyPatch, case: str, scale: str) -> None:
    # On an accelerator, eager calls keep every seed slot (no host read to cut the empty
    # ones), paint element by element with a spare region past the mask, and count the spare
    # elements out. Forced on the CPU, that path must give the same output, gradient and strides.
    x = _input(case)
    fn, block = _BY_RANK[x.dim()]

    def run() -> tuple[torch.Tensor, ...]:
        leaf = x.detach().requires_grad_(True)
        y = fn(leaf, 0.3, block, scale=scale, generator=torch.Generator().manual_seed(0))
        (grad,) = torch.autograd.grad(y, leaf, torch.full_like(y, 3.0))
        return y.detach(), grad

    on_cpu = run()
    monkeypatch.setattr(dropblock_torch._blocks, "eager_cpu", lambda device: False)
    on_accelerator = run()
    assert bool((on_cpu[0] == 0).any()), "nothing was dropped: the case tests nothing"
    for cpu, accelerator in zip(on_cpu, on_accelerator, strict=True):
        assert torch.equal(cpu, accelerator)
        assert cpu.stride() == accelerator.stride()


def _quotient(count: int, kept: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(count, dtype=dtype) / torch.tensor(kept, dtype=dtype)


@pytest.mark.parametrize("on_cpu", [True, False], ids=["eager-cpu-float", "tensor"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scale_is_the_correctly_rounded_quotient(
    monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, on_cpu: bool
) -> None:
    # In float32, 1605632 / 1455632 is 1.10304797; times the rounded reciprocal, 1.10304809.
    # On the CPU in eager mode "batch" is a Python float; elsewhere a tensor of the same value.
    if not on_cpu:
        monkeypatch.setattr(dropblock_torch._blocks, "eager_cpu", lambda device: False)
    dropped = torch.zeros(8, 256, 28, 28, dtype=torch.bool)
    batch = scale_factor(dropped, "batch", dtype, dropped_count=torch.tensor(150000))
    expected = _quotient(dropped.numel(), dropped.numel() - 150000, dtype)
    if on_cpu:
        assert isinstance(batch, float)
        assert batch == float(expected)
        assert scale_factor(dropped, "batch", dtype, dropped_count=torch.tensor(dropped.numel())) == 0.0
    else:
        assert isinstance(batch, torch.Tensor)
        assert batch.dtype == dtype
        assert torch.equal(batch.reshape(()), expected)

    dropped[0].view(-1)[:150000] = True
    sample = scale_factor(dropped, "sample", dtype)
    assert isinstance(sample, torch.Tensor)
    per_sample = dropped[0].numel()
    assert torch.equal(sample[0].reshape(()), _quotient(per_sample, per_sample - 150000, dtype))
    assert bool((sample[1:] == 1).all())
