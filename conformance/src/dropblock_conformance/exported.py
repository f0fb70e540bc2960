"""Judging an ONNX export (behaviour ``onnx-inference``) from the raw artefacts an adapter hands back.

The adapter only exports (:class:`~dropblock_core.results.OnnxExport`); this module checks
the model, looks for any trace of the layer and runs it in onnxruntime. Needs ``onnx`` and
``onnxruntime`` (the ``onnx`` extra of this package).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from dropblock_core.results import OnnxExport

#: Operator types that only a random or dropout computation would leave in the graph.
RANDOM_OPS = ("Random", "Bernoulli", "Dropout", "Multinomial")
#: Largest absolute difference allowed between onnxruntime and the framework.
ATOL = 1e-5


def _nodes(graph: Any) -> Iterator[Any]:
    """Every node of ``graph``, including those of subgraphs (If/Loop/Scan bodies)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.g.node:
                yield from _nodes(attribute.g)
            for subgraph in attribute.graphs:
                yield from _nodes(subgraph)


def traces_of_the_layer(proto: Any) -> list[str]:
    """Random or dropout operators, and names, op types or domains mentioning "drop", in ``proto``."""
    nodes = [*_nodes(proto.graph), *(node for function in proto.functions for node in function.node)]
    found = [f"op {node.op_type}" for node in nodes if any(op in node.op_type for op in RANDOM_OPS)]
    names = [
        *(text for node in nodes for text in (node.op_type, node.domain, node.name)),
        *(function.name for function in proto.functions),
        *(init.name for init in proto.graph.initializer),
    ]
    found += [f"name {text!r}" for text in names if "drop" in text.lower()]
    return found


def judge_onnx(export: OnnxExport) -> None:
    """Raise ``AssertionError`` unless the export is valid, leaves no trace of the layer and matches the framework."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load_model_from_string(export.model)
    onnx.checker.check_model(proto)
    traces = traces_of_the_layer(proto)
    ops = sorted({node.op_type for node in _nodes(proto.graph)})
    assert not traces, f"the exported graph holds traces of the layer: {traces}; ops {ops}"
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert not batch.HasField("dim_value"), f"the batch dimension is fixed to {batch.dim_value}"
    batch_sizes = {x.shape[0] for x, _ in export.runs}
    assert len(batch_sizes) >= 2, f"the export must be run at two batch sizes or more, got {sorted(batch_sizes)}"
    session = ort.InferenceSession(export.model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for x, expected in export.runs:
        (got,) = session.run(None, {name: np.asarray(x, dtype=np.float32)})
        where = f"batch {x.shape[0]}"
        assert got.shape == expected.shape, f"{where}: onnxruntime gave shape {got.shape}, expected {expected.shape}"
        worst = float(np.max(np.abs(got - expected)))
        assert worst <= ATOL, f"{where}: onnxruntime differs from the framework by {worst:.3g} > {ATOL}"
