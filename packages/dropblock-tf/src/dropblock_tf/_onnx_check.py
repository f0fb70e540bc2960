"""ONNX export check (issue 6): a small CNN holding DropBlock, exported with ``model.export(format="onnx")``.

Needs ``tf2onnx``, ``onnx`` and ``onnxruntime`` (the ``onnx`` extra). In inference mode the
layer returns its input, so the exported graph holds only the convolutions, batch norm and
ReLU: no random op, no Dropout node, nothing named after DropBlock.
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np

from .layers import DropBlock1D, DropBlock2D, DropBlock3D

_FORBIDDEN_OPS = ("Random", "Bernoulli", "Dropout", "Multinomial")
_SPATIAL = {1: (16,), 2: (8, 8), 3: (6, 6, 6)}


def build_model(rank: int) -> keras.Model:
    """Conv -> BatchNorm -> ReLU -> DropBlock -> Conv, channels_last, with a dynamic batch."""
    conv = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    drop = {1: DropBlock1D, 2: DropBlock2D, 3: DropBlock3D}[rank]
    inputs = keras.Input((*_SPATIAL[rank], 3))
    h = conv(8, 3, padding="same")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = drop(0.2, 3, seed=0, data_format="channels_last")(h)
    outputs = conv(4, 1)(h)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(rank)
    bn = model.layers[2]
    bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(size=8), rng.normal(size=8), rng.uniform(0.5, 2.0, 8)])
    return model


def onnx_check(rank: int) -> dict[str, bool | str]:
    """Export, then check the graph and compare onnxruntime with Keras at batch sizes 1 and 3."""
    import onnx
    import onnxruntime as ort

    checks: dict[str, bool | str] = {}
    model = build_model(rank)
    model(np.zeros((1, *_SPATIAL[rank], 3), np.float32), training=False)  # export() needs a called model
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        model.export(path, format="onnx", verbose=False)
        proto = onnx.load(path)
        try:
            onnx.checker.check_model(proto)
            checks["onnx_checker"] = True
        except onnx.checker.ValidationError as err:  # pragma: no cover - reported, not raised
            checks["onnx_checker"] = str(err)
        ops = sorted({node.op_type for node in proto.graph.node})
        bad_ops = [op for op in ops if any(word in op for word in _FORBIDDEN_OPS)]
        checks["no_random_or_dropout_op"] = True if not bad_ops else f"found {bad_ops} in {ops}"
        traces = [n.name for n in proto.graph.node if "drop" in n.name.lower() or "drop" in n.op_type.lower()]
        checks["no_dropblock_node"] = True if not traces else f"nodes {traces}"
        batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
        checks["dynamic_batch"] = (
            True if not batch_dim.HasField("dim_value") else f"batch fixed to {batch_dim.dim_value}"
        )
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for batch in (1, 3):
            x = np.random.default_rng(batch).normal(size=(batch, *_SPATIAL[rank], 3)).astype(np.float32)
            expected = np.asarray(model(x, training=False))
            got = session.run(None, {name: x})[0]
            diff = float(np.max(np.abs(got - expected)))
            checks[f"onnxruntime_matches_batch_{batch}"] = True if diff <= 1e-5 else f"max abs diff {diff}"
    return checks
