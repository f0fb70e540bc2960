"""The ONNX behaviour: an NNX CNN holding DropBlock, exported in eval mode with jax2onnx.

In eval mode (``deterministic=True``) ``DropBlock.__call__`` returns its input object
untouched before any JAX operation, so the exporter's trace holds nothing of the layer.
The conformance suite judges the export.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ._core.results import OnnxExport
from .nnx import DropBlock

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


def onnx_export(rank: int) -> OnnxExport:
    """The model exported with ``jax2onnx`` (symbolic batch), and its NNX eval outputs at batch sizes 2 and 5."""
    from jax2onnx import to_onnx

    model = trained_model(rank)
    proto = to_onnx(model, [("B", *_SIZES[rank], 3)], model_name=f"small_cnn_{rank}d")
    runs = []
    for batch in (2, 5):
        x = np.asarray(jax.random.normal(jax.random.key(batch), (batch, *_SIZES[rank], 3)), dtype=np.float32)
        runs.append((x, np.asarray(model(jnp.asarray(x)))))
    return OnnxExport(model=proto.SerializeToString(), runs=runs)
