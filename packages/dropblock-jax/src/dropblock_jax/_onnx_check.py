"""The ONNX behaviour: an NNX CNN holding DropBlock, exported in eval mode with jax2onnx.

In eval mode (``deterministic=True``) ``DropBlock.__call__`` returns its input object
untouched before any JAX operation, so the exporter's trace holds nothing of the layer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .nnx import DropBlock

_FORBIDDEN = ("Random", "Bernoulli", "Dropout", "DropBlock")
_SIZES = {1: (16,), 2: (12, 12), 3: (6, 6, 6)}


class SmallCNN(nnx.Module):
    """Conv, BatchNorm, ReLU, DropBlock, Conv for a 1D, 2D or 3D channels-last input."""

    def __init__(self, rank: int, rngs: nnx.Rngs):
        kernel = (3,) * rank
        self.conv1 = nnx.Conv(3, 8, kernel, rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)
        self.drop = DropBlock(0.2, 3, rngs=rngs)
        self.conv2 = nnx.Conv(8, 4, kernel, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv2(self.drop(nnx.relu(self.norm(self.conv1(x)))))


def trained_model(rank: int) -> SmallCNN:
    """A model whose BatchNorm statistics moved away from the defaults, then switched to eval."""
    model = SmallCNN(rank, nnx.Rngs(params=0, dropout=1))
    x = jax.random.normal(jax.random.key(2), (4, *_SIZES[rank], 3)) * 2.0 + 0.5
    model.train()
    model(x)
    model.eval()
    return model


def onnx_export_checks(rank: int) -> dict[str, bool | str]:
    """Export, then check the graph and compare onnxruntime with NNX eval at two batch sizes."""
    import onnx
    import onnxruntime as ort
    from jax2onnx import to_onnx

    checks: dict[str, bool | str] = {}
    model = trained_model(rank)
    proto = to_onnx(model, [("B", *_SIZES[rank], 3)], model_name=f"dropblock_cnn_{rank}d")
    try:
        onnx.checker.check_model(proto)
        checks["onnx.checker"] = True
    except Exception as error:
        checks["onnx.checker"] = f"{type(error).__name__}: {error}"
    ops = sorted({node.op_type for node in proto.graph.node})
    names = [node.name for node in proto.graph.node] + [init.name for init in proto.graph.initializer]
    leftovers = [op for op in ops if any(bad.lower() in op.lower() for bad in _FORBIDDEN)]
    leftovers += [n for n in names if "dropblock" in n.lower() or "drop_block" in n.lower()]
    checks["no random, Dropout or DropBlock node"] = True if not leftovers else f"found {leftovers} in ops {ops}"
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    checks["symbolic batch dimension"] = True if dims[0].dim_param else f"batch dim is {dims[0]}"
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (2, 5):
        x = np.asarray(jax.random.normal(jax.random.key(batch), (batch, *_SIZES[rank], 3)), dtype=np.float32)
        expected = np.asarray(model(jnp.asarray(x)))
        (got,) = session.run(None, {session.get_inputs()[0].name: x})
        worst = float(np.max(np.abs(got - expected)))
        checks[f"onnxruntime matches nnx eval, batch {batch}"] = True if worst <= 1e-5 else f"max abs error {worst}"
    return checks
