"""DropBlock for JAX, Flax NNX and Flax Linen.

* :func:`drop_block` — the pure function (jit-, vmap- and grad-friendly).
* :class:`dropblock_jax.nnx.DropBlock` — an ``nnx.Module`` mirroring ``nnx.Dropout``.
* :class:`dropblock_jax.linen.DropBlock` — a ``linen.Module`` mirroring ``linen.Dropout``.
* :func:`linear_schedule` — the paper's linear ramp of the rate, traced-friendly.

>>> import jax, jax.numpy as jnp, dropblock_jax
>>> dropblock_jax.drop_block(jax.random.key(0), jnp.ones((1, 8, 8, 2)), 0.2, 3).shape
(1, 8, 8, 2)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._core import __version__
from .functional import drop_block
from .schedule import linear_schedule

if TYPE_CHECKING:  # type checkers see the front ends; at run time they load on first use
    from . import linen, nnx

__all__ = ["__version__", "drop_block", "linear_schedule", "linen", "nnx"]


def __getattr__(name: str) -> Any:
    # The Flax front ends import flax lazily: `import dropblock_jax` needs only jax.
    if name in ("nnx", "linen"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
