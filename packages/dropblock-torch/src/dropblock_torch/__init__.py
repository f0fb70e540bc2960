"""DropBlock for PyTorch: ``DropBlock1d``, ``DropBlock2d``, ``DropBlock3d`` and their functional twins.

One implementation of the behaviour pinned by the dropblock monorepo's shared spec
(``shared_spec/dropblock.yaml``): valid-region seeds with the paper's gamma, per-channel
masks, block clamping, float32 scaling, exact sparse seed sampling.

>>> import torch
>>> from dropblock_torch import DropBlock2d
>>> layer = DropBlock2d(p=0.1, block_size=7)
>>> layer(torch.randn(2, 8, 14, 14)).shape
torch.Size([2, 8, 14, 14])
"""

from . import functional
from ._core import __version__
from .modules import DropBlock1d, DropBlock2d, DropBlock3d
from .schedule import LinearDropBlockSchedule

__all__ = ["DropBlock1d", "DropBlock2d", "DropBlock3d", "LinearDropBlockSchedule", "__version__", "functional"]
