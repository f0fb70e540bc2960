"""Shared fixtures: every device this machine has (CPU, plus CUDA when present)."""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


def generator(device: torch.device | str, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
