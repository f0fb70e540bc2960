"""The ONNX judge fails every kind of bad export and passes a clean one."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from dropblock_conformance.exported import judge_onnx  # noqa: E402
from dropblock_core.results import OnnxExport  # noqa: E402


def relu_model(*, batch: str | int = "B", extra: list | None = None, node_name: str = "relu") -> bytes:
    """X (batch, 3) -> Relu -> Y, optionally with more nodes feeding a second, unused output."""
    nodes = [helper.make_node("Relu", ["X"], ["Y"], name=node_name), *(extra or [])]
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [batch, 3])]
    if extra:
        outputs.append(helper.make_tensor_value_info(extra[-1].output[0], TensorProto.FLOAT, [batch, 3]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [batch, 3])], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def runs(*batches: int, offset: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(n, 3)).astype(np.float32) for n in batches]
    return [(x, np.maximum(x, 0) + offset) for x in xs]


def function_hiding_a_dropout() -> bytes:
    """X -> Block(X) -> Y, the local function Block holding If(false) then Dropout else Identity."""
    branch = {
        name: helper.make_graph(
            [helper.make_node(op, ["X"], [f"{name}_out"])],
            name,
            [],
            [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, ["B", 3])],
        )
        for name, op in (("then", "Dropout"), ("else", "Identity"))
    }
    condition = helper.make_node("Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.BOOL, [], [False]))
    choose = helper.make_node("If", ["c"], ["Y"], then_branch=branch["then"], else_branch=branch["else"])
    function = helper.make_function("local", "Block", ["X"], ["Y"], [condition, choose], [helper.make_opsetid("", 17)])
    graph = helper.make_graph(
        [helper.make_node("Block", ["X"], ["Y"], domain="local")],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["B", 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["B", 3])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    return helper.make_model(graph, opset_imports=opsets, functions=[function]).SerializeToString()


def renamed_values_model() -> bytes:
    """Relu, but its output value is named after the layer."""
    nodes = [helper.make_node("Relu", ["X"], ["dropblock_out"]), helper.make_node("Identity", ["dropblock_out"], ["Y"])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["B", 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["B", 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def identity_runs(*batches: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(x, x) for x in (rng.normal(size=(n, 3)).astype(np.float32) for n in batches)]


def test_a_clean_export_passes():
    judge_onnx(OnnxExport(relu_model(), runs(1, 3)))


@pytest.mark.parametrize(
    ("export", "complaint"),
    [
        (OnnxExport(relu_model(extra=[helper.make_node("RandomUniformLike", ["X"], ["R"])]), runs(1, 3)), "traces"),
        (OnnxExport(relu_model(extra=[helper.make_node("Dropout", ["X"], ["D"])]), runs(1, 3)), "traces"),
        (OnnxExport(relu_model(node_name="model/drop_block2d/relu"), runs(1, 3)), "traces"),
        (OnnxExport(relu_model(batch=3), runs(3, 3)), "fixed"),
        (OnnxExport(relu_model(), runs(2, 2)), "two batch sizes"),
        (OnnxExport(relu_model(), runs(1, 3, offset=1e-3)), "differs"),
        (OnnxExport(function_hiding_a_dropout(), identity_runs(1, 3)), "traces"),
        (OnnxExport(renamed_values_model(), runs(1, 3)), "traces"),
    ],
    ids=[
        "random-op",
        "dropout-op",
        "named-after-the-layer",
        "static-batch",
        "one-batch-size",
        "wrong-values",
        "dropout-in-a-function-branch",
        "value-named-after-the-layer",
    ],
)
def test_a_bad_export_fails(export, complaint):
    with pytest.raises(AssertionError, match=complaint):
        judge_onnx(export)


class _Adapter:
    name = "torch"

    def __init__(self, missing: str) -> None:
        self.missing = missing

    def onnx_export(self, *, rank: int) -> OnnxExport:
        raise ModuleNotFoundError(f"No module named {self.missing!r}", name=self.missing)


def test_missing_onnx_tools_skip_naming_the_extra_and_other_missing_modules_fail():
    from dropblock_conformance.checks import onnx_inference

    case = {"rank": 2}
    with pytest.raises(pytest.skip.Exception, match=r"onnxscript is not installed.*dropblock-torch\[onnx\]"):
        onnx_inference(_Adapter("onnxscript"), None, case)
    with pytest.raises(ModuleNotFoundError, match=r"dropblock_torch\._helpers"):
        onnx_inference(_Adapter("dropblock_torch._helpers"), None, case)
