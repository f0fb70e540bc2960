"""Stage 1 internals: the geometric-gap sampler at the edges of the rate range."""

from __future__ import annotations

import pytest
import torch

from dropblock_torch._geometry import make_plan
from dropblock_torch._sampling import sample_sparse

_PLAN = make_plan((2, 3, 12, 12), (3, 3), 0.2, per_channel=True)


def _sample(rate: float | torch.Tensor, seed: int = 0) -> torch.Tensor:
    return sample_sparse(rate, _PLAN, torch.device("cpu"), torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("rate", [torch.tensor(0.0), torch.tensor(0.0, dtype=torch.float64)])
def test_rate_zero_leaves_every_slot_empty(rate: torch.Tensor) -> None:
    # log(1 - gamma) = -0.0: the gaps are +inf (or NaN for a uniform of 0), clamped to "past the grid".
    assert bool((_sample(rate) >= _PLAN.corners).all())


@pytest.mark.parametrize("rate", [1.0, torch.tensor(1.0)])
def test_rate_one_makes_every_corner_a_seed(rate: float | torch.Tensor) -> None:
    assert torch.equal(_sample(rate), torch.arange(_PLAN.capacity))


@pytest.mark.parametrize("rate", [0.05, 0.2, torch.tensor(0.1)])
def test_positions_strictly_increase(rate: float | torch.Tensor) -> None:
    positions = _sample(rate, seed=5)
    assert positions.dtype == torch.int64
    assert bool((positions[1:] > positions[:-1]).all())
    assert int(positions[0]) >= 0


def test_empty_slots_never_overflow() -> None:
    # A tiny rate makes most gaps exceed the grid: each is clamped, so the sum stays in range.
    positions = _sample(torch.tensor(1e-12))
    assert bool((positions >= 0).all())
    assert int(positions[-1]) <= _PLAN.capacity * (_PLAN.corners + 1)


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.2, 1.0])
def test_float_and_tensor_rates_draw_the_same_positions(rate: float) -> None:
    # A float rate's log(1 - gamma) is computed in Python, a tensor rate's by torch.
    assert torch.equal(_sample(rate, seed=3), _sample(torch.tensor(rate, dtype=torch.float64), seed=3))


def test_eager_calls_reuse_the_plan_of_a_shape() -> None:
    assert make_plan(torch.Size([2, 3, 12, 12]), (3, 3), 0.2, per_channel=True) is _PLAN
