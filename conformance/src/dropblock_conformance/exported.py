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


def _subgraphs_of(node: Any) -> Iterator[Any]:
    """Every graph nested in ``node`` (If/Loop/Scan bodies), at any depth."""
    for attribute in node.attribute:
        for graph in [*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs]:
            yield graph
            for inner in graph.node:
                yield from _subgraphs_of(inner)


def _nodes(nodes: Any) -> Iterator[Any]:
    """Every node of ``nodes`` (a graph's or a function's) and of the graphs nested in them."""
    for node in nodes:
        yield node
        for graph in _subgraphs_of(node):
            yield from graph.node


def traces_of_the_layer(proto: Any) -> list[str]:
    """Random or dropout operators, and any name mentioning "drop" (ops, domains, nodes, values, functions)."""
    top = [*proto.graph.node, *(node for function in proto.functions for node in function.node)]
    nodes = list(_nodes(top))
    found = [f"op {node.op_type}" for node in nodes if any(op in node.op_type for op in RANDOM_OPS)]
    graphs = [proto.graph, *(graph for node in top for graph in _subgraphs_of(node))]
    names = [
        *(text for node in nodes for text in (node.op_type, node.domain, node.name, *node.input, *node.output)),
        *(text for function in proto.functions for text in (function.name, *function.input, *function.output)),
        *(graph.name for graph in graphs),
        *(value.name for graph in graphs for value in (*graph.input, *graph.output, *graph.value_info)),
        *(init.name for graph in graphs for init in graph.initializer),
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
    ops = sorted({node.op_type for node in _nodes(proto.graph.node)})
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
