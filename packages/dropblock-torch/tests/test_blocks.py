"""Stage 2 internals: the eager CPU row painter, the per-element painter and the byte count agree."""

from __future__ import annotations

import pytest
import torch

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


def _quotient(count: int, kept: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(count, dtype=dtype) / torch.tensor(kept, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scale_is_the_correctly_rounded_quotient(dtype: torch.dtype) -> None:
    # In float32, 1605632 / 1455632 is 1.10304797; times the rounded reciprocal, 1.10304809.
    dropped = torch.zeros(8, 256, 28, 28, dtype=torch.bool)
    batch = scale_factor(dropped, "batch", dtype, dropped_count=torch.tensor(150000))
    assert batch is not None
    assert batch.dtype == dtype
    assert torch.equal(batch.reshape(()), _quotient(dropped.numel(), dropped.numel() - 150000, dtype))

    dropped[0].view(-1)[:150000] = True
    sample = scale_factor(dropped, "sample", dtype)
    assert sample is not None
    per_sample = dropped[0].numel()
    assert torch.equal(sample[0].reshape(()), _quotient(per_sample, per_sample - 150000, dtype))
    assert bool((sample[1:] == 1).all())
