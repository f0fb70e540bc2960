"""DropBlock for Keras 3 on TensorFlow: ``DropBlock1D``, ``DropBlock2D``, ``DropBlock3D``.

The layers follow Keras conventions (``rate``, ``block_size``, ``seed``, ``data_format``,
``training=None`` meaning inference) and are registered for ``.keras`` serialization
under the package name ``"dropblock"``. ``drop_block`` is the stateless functional form
for plain TensorFlow, and ``DropBlockSchedule`` the paper's linear rate schedule.

>>> import dropblock_tf
>>> sorted(dropblock_tf.__all__)[:3]
['DropBlock1D', 'DropBlock2D', 'DropBlock3D']
"""

import keras as _keras

if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"dropblock_tf needs the TensorFlow Keras backend, but Keras is running on {_keras.backend.backend()!r} "
        "(KERAS_BACKEND). Use `dropblock-torch` (import dropblock_torch) for PyTorch or `dropblock-jax` "
        "(import dropblock_jax) for JAX/Flax, or set KERAS_BACKEND=tensorflow."
    )

from ._core import __version__
from .layers import DropBlock1D, DropBlock2D, DropBlock3D
from .ops import drop_block
from .schedule import DropBlockSchedule

__all__ = ["DropBlock1D", "DropBlock2D", "DropBlock3D", "DropBlockSchedule", "__version__", "drop_block"]
