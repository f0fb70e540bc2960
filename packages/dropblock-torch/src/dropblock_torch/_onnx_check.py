"""ONNX export of a small CNN holding DropBlock, in eval mode (spec behaviour ``onnx-inference``).

Needs ``onnx``, ``onnxruntime`` and ``onnxscript`` (the ``test`` extra). In eval mode the
module returns its input before any tensor work, so ``torch.export`` (and therefore the
``dynamo=True`` exporter) records nothing of it.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from .modules import DropBlock1d, DropBlock2d, DropBlock3d

_LAYERS = {
    1: (nn.Conv1d, nn.BatchNorm1d, DropBlock1d),
    2: (nn.Conv2d, nn.BatchNorm2d, DropBlock2d),
    3: (nn.Conv3d, nn.BatchNorm3d, DropBlock3d),
}
_SPATIAL = {1: (32,), 2: (16, 16), 3: (6, 8, 8)}
_FORBIDDEN = ("Random", "Bernoulli", "Dropout")


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


def _all_nodes(proto: object) -> list[object]:
    nodes = list(proto.graph.node)  # type: ignore[attr-defined]
    for function in proto.functions:  # type: ignore[attr-defined]
        nodes.extend(function.node)
    return nodes


def onnx_check(rank: int) -> dict[str, bool | str]:
    """Export, inspect and run the model; each sub-check is ``True`` or the reason it failed."""
    import onnx
    import onnxruntime as ort

    checks: dict[str, bool | str] = {}
    model = small_cnn(rank)
    example = torch.randn(2, 3, *_SPATIAL[rank])
    batch = torch.export.Dim("batch", min=1, max=1024)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: batch},), verbose=False)
        proto = program.model_proto  # type: ignore[union-attr]
        checks["exported"] = True
    except Exception as error:  # reported as the sub-check's reason
        return {"exported": f"{type(error).__name__}: {error}"}
    try:
        onnx.checker.check_model(proto, full_check=True)
        checks["onnx_checker"] = True
    except Exception as error:
        checks["onnx_checker"] = f"{type(error).__name__}: {error}"
    ops = sorted({node.op_type for node in _all_nodes(proto)})  # type: ignore[attr-defined]
    bad = [op for op in ops if any(op.startswith(f) for f in _FORBIDDEN)]
    checks["no_random_or_dropout_ops"] = True if not bad else f"found {bad} in {ops}"
    traces = [
        text
        for node in _all_nodes(proto)
        for text in (node.op_type, node.domain)  # type: ignore[attr-defined]
        if "drop" in text.lower()
    ] + [f.name for f in proto.functions if "drop" in f.name.lower()]
    checks["no_dropblock_trace"] = True if not traces else f"found {traces}; ops {ops}"
    input_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    checks["dynamic_batch"] = True if input_dim.dim_param else f"batch dim is static ({input_dim.dim_value})"
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    for n in (2, 5):
        x = torch.randn(n, 3, *_SPATIAL[rank])
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(None, {input_name: x.numpy()})
        err = float(np.abs(got - expected).max())
        checks[f"ort_matches_eval_batch_{n}"] = True if err <= 1e-5 else f"max abs error {err:.3g} > 1e-5"
    return checks
