"""Stage 1: draw the seed corners, exactly Bernoulli(gamma) per corner.

Sparse method (the default): the gaps between consecutive seeds of the flattened corner
grid are i.i.d. Geometric(gamma), ``floor(log(1 - U) / log(1 - gamma))`` for ``U``
uniform on [0, 1), so ``plan.capacity`` uniforms and a running sum give the seeds'
flat indices. Slots past the grid (index ``>= plan.corners``) are not seeds.

Dense method (when painting ``capacity`` blocks would touch more elements than the
mask holds): one uniform per corner, ``U < gamma``.

Under ``torch.distributed`` with a world size W > 1 and no explicit generator, every rank
draws the same W-fold block of uniforms from the default generator and keeps its own row,
so ranks that called ``torch.manual_seed`` with the same seed still draw independent
masks, while the default generator stays in lockstep across ranks.
"""

from __future__ import annotations

import math

import torch

from ._geometry import Plan

Rate = float | torch.Tensor


def sampling_dtype(device: torch.device) -> torch.dtype:
    """float64 where the device has it (CPU, CUDA), else float32."""
    return torch.float64 if device.type in ("cpu", "cuda", "meta") else torch.float32


def rank_and_world(generator: torch.Generator | None) -> tuple[int, int]:
    """This process's row of the shared uniform block: ``(rank, world_size)``.

    A caller-supplied generator is the caller's own stream: ``(0, 1)``.
    """
    if generator is None and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _uniform(
    shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    rank, world = rank_and_world(generator)
    if world == 1:
        return torch.rand(shape, dtype=dtype, device=device, generator=generator)
    return torch.rand((world, *shape), dtype=dtype, device=device, generator=generator)[rank]


def seed_probability(rate: Rate, plan: Plan, dtype: torch.dtype) -> Rate:
    """``gamma`` for ``rate`` (a float, or a 0-dim tensor that may change between calls).

    ``rate == 1`` gives ``gamma = 1``: every corner is a seed.
    """
    if isinstance(rate, torch.Tensor):
        rate = rate.to(dtype)
        return torch.where(rate >= 1.0, 1.0, torch.clamp(rate * plan.factor, max=1.0))
    return 1.0 if rate >= 1.0 else min(1.0, rate * plan.factor)


def sample_sparse(
    rate: Rate, plan: Plan, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Flat corner indices of ``plan.capacity`` seed slots (int64; ``>= plan.corners`` marks an empty slot)."""
    dtype = sampling_dtype(device)
    corners = plan.corners
    gaps = _uniform((plan.capacity,), dtype, device, generator)
    g = seed_probability(rate, plan, dtype)
    if isinstance(g, torch.Tensor):
        log_q: Rate = torch.log1p(-g)
    else:  # a Python float is a double; gamma = 1 gives -inf as torch.log1p does
        log_q = -math.inf if g >= 1.0 else math.log1p(-g)
    # In place, one pass per step: the sampler is about a tenth of a call's time.
    gaps.neg_().log1p_().div_(log_q).floor_()
    # gamma = 0 gives +inf or NaN gaps: no seed; gamma = 1 gives 0. Clamp before the integer cast.
    gaps.nan_to_num_(nan=corners, posinf=corners, neginf=corners).clamp_(max=corners).add_(1)
    return torch.cumsum(gaps, dim=0, dtype=torch.int64).sub_(1)


def sample_dense(
    rate: Rate, plan: Plan, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A bool seed grid of shape ``plan.grid``: one Bernoulli(gamma) per corner."""
    dtype = sampling_dtype(device)
    uniform = _uniform(plan.grid, dtype, device, generator)
    return uniform < seed_probability(rate, plan, dtype)
