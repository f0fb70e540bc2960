"""A tiny CNN with DropBlock and a schedule learns a synthetic task."""

from __future__ import annotations

import pickle

import torch
from torch import nn

from dropblock_torch import DropBlock2d, LinearDropBlockSchedule


def make_data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images with a bright 4x4 square in the left (label 0) or right (label 1) half."""
    x = torch.randn(n, 1, 16, 16, generator=generator) * 0.5
    y = torch.randint(0, 2, (n,), generator=generator)
    rows = torch.randint(0, 12, (n,), generator=generator)
    cols = torch.randint(0, 4, (n,), generator=generator) + 8 * y
    for i in range(n):
        x[i, 0, rows[i] : rows[i] + 4, cols[i] : cols[i] + 4] += 2.0
    return x, y


def test_tiny_cnn_learns_with_scheduled_dropblock() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x_train, y_train = make_data(512, g)
    x_test, y_test = make_data(256, g)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        DropBlock2d(p=0.15, block_size=3),
        nn.MaxPool2d(4),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 2),
    )
    schedule = LinearDropBlockSchedule(model, total_steps=60)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(4):
        for i in range(0, 512, 32):
            loss = nn.functional.cross_entropy(model(x_train[i : i + 32]), y_train[i : i + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    assert schedule.rates() == [0.15]
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy > 0.9, accuracy
    restored = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        assert torch.equal(restored(x_test), model(x_test))
