"""ONNX export of a small CNN holding DropBlock, in eval mode (spec behaviour ``onnx-inference``).

The conformance suite judges the export (graph, traces of the layer, onnxruntime against
eval). Needs ``onnx`` and ``onnxscript`` (the ``test`` extra). In eval mode the
module returns its input before any tensor work, so ``torch.export`` (and therefore the
``dynamo=True`` exporter) records nothing of it.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ._core.results import OnnxExport
from .modules import DropBlock1d, DropBlock2d, DropBlock3d

_LAYERS = {
    1: (nn.Conv1d, nn.BatchNorm1d, DropBlock1d),
    2: (nn.Conv2d, nn.BatchNorm2d, DropBlock2d),
    3: (nn.Conv3d, nn.BatchNorm3d, DropBlock3d),
}
_SPATIAL = {1: (32,), 2: (16, 16), 3: (6, 8, 8)}


def small_cnn(rank: int) -> nn.Module:
    """conv, batch norm, ReLU, DropBlock, conv, with non-trivial batch-norm statistics."""
    conv, norm, drop = _LAYERS[rank]
    torch.manual_seed(0)
    model = nn.Sequential(conv(3, 8, 3, padding=1), norm(8), nn.ReLU(), drop(p=0.2, block_size=3), conv(8, 4, 3))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, *_SPATIAL[rank]))
    return model.eval()


def onnx_export(rank: int) -> OnnxExport:
    """The model exported by the ``dynamo=True`` exporter (symbolic batch), and its eval outputs at batches 2 and 5."""
    model = small_cnn(rank)
    example = torch.randn(2, 3, *_SPATIAL[rank])
    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
    assert program is not None
    runs = []
    for n in (2, 5):
        x = torch.randn(n, 3, *_SPATIAL[rank])
        with torch.no_grad():
            runs.append((x.numpy(), model(x).numpy()))
    return OnnxExport(model=program.model_proto.SerializeToString(), runs=runs)
