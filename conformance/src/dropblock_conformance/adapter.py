"""The contract between the conformance suite and one implementation.

An implementation plugs into the suite with one object that satisfies :class:`Adapter`,
found through the ``dropblock.conformance`` entry-point group (name -> ``module:attr``).
The suite speaks NumPy and canonical parameter names; the adapter translates to its
framework (PyTorch's ``p`` for ``rate``, a ``tf.random`` seed or a JAX key for ``seed``).

Arrays cross the boundary as ``float64`` NumPy arrays holding values that are exact in
the dtype under test; the adapter casts them to that dtype inside its framework and
returns outputs as :class:`Output`. Masks and seeds cross as ``bool`` arrays in the same
layout as ``x``: ``(N, C, *S)`` for ``channels_first``, ``(N, *S, C)`` for
``channels_last``, with the channel axis of length 1 when ``per_channel=False``.

Canonical parameters (``Params``): ``rate`` (float), ``block_size`` (int or tuple),
``data_format`` ("channels_first" | "channels_last"), ``per_channel`` (bool) and
``scale`` ("batch" | "sample" | "none"). The spatial rank is ``x.ndim - 2``.

Behaviours that only exist for a framework (compilers, checkpoints, exporters,
data-parallel engines) are optional methods; a missing one fails those cases, so a
framework column can never pass by omission.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dropblock_core.results import CompileResult, DataParallelRun, OnnxExport, Output, ScheduleResult

DTYPES = ("float16", "bfloat16", "float32", "float64")


@runtime_checkable
class Adapter(Protocol):
    """What the suite needs from an implementation (see the module docstring)."""

    #: Column name in the conformance matrix ("oracle", "torch", "tf", "jax").
    name: str
    #: Data formats its public API accepts.
    data_formats: tuple[str, ...]
    #: Float dtypes it supports (a subset of ``DTYPES``).
    dtypes: tuple[str, ...]
    #: Case id (``behaviour[case]``) or behaviour id -> reason it is expected to fail.
    expected_failures: Mapping[str, str]
    #: Canonical parameter name -> the public API's name where they differ (PyTorch: ``{"rate": "p"}``).
    #: Error messages must name the public one.
    parameter_names: Mapping[str, str]

    def make_layer(self, *, rank: int, seed: int, **params: Any) -> Any:
        """Construct the public stateful layer/module. Bad parameters raise here."""

    def call_layer(self, layer: Any, x: np.ndarray, *, dtype: str, training: bool) -> Output:
        """Call ``layer`` on ``x`` cast to ``dtype`` (may be "int32" or "bool" to test errors)."""

    def call_functional(self, x: np.ndarray, *, seed: int, dtype: str, training: bool = True, **params: Any) -> Output:
        """Call the stateless functional form; the same ``seed`` gives the same output."""

    def inference_calls(self, layer: Any, x: np.ndarray, *, dtype: str) -> Mapping[str, Output]:
        """``layer`` called on ``x`` in every other way its framework runs a layer for inference.

        Beyond ``call_layer(..., training=False)``: Keras ``training=None`` and
        ``Model.predict``, PyTorch ``.eval()`` under ``torch.inference_mode``, Flax
        ``deterministic`` set at construction or through ``.eval()``. Keyed by a
        description of the call; every output must be the input, bit for bit.
        """

    def sample_seeds(self, shape: Sequence[int], *, seed: int, **params: Any) -> np.ndarray:
        """Stage 1: the seed corners the implementation draws for an input of ``shape``.

        Returns a bool array of shape ``(N, C', *V)`` (channels_first) or
        ``(N, *V, C')`` (channels_last), ``V_i = S_i - k_i + 1`` with clamped ``k_i``,
        ``C' = C`` if ``per_channel`` else 1.
        """

    def apply_seeds(
        self,
        x: np.ndarray,
        seeds: np.ndarray,
        *,
        dtype: str,
        block_size: Any,
        data_format: str,
        scale: str,
    ) -> Output:
        """Stage 2: the deterministic function ``(x, seeds) -> output`` the layer uses."""

    def gradient(
        self, x: np.ndarray, cotangent: np.ndarray, *, seed: int, dtype: str, **params: Any
    ) -> tuple[Output, np.ndarray]:
        """Forward in training mode and the vector-Jacobian product with ``cotangent``."""


class OptionalCapabilities(Protocol):
    """Framework-level behaviours; an adapter without one fails its cases."""

    def compile_check(self, x: np.ndarray, rates: Sequence[float], *, seed: int, **params: Any) -> CompileResult:
        """Run the layer under the framework compiler once per rate, in training mode."""

    def schedule_check(
        self, *, target: float, total_steps: int, start: float, probe_steps: Sequence[int], restore_step: int
    ) -> ScheduleResult:
        """Drive the framework's scheduled-DropBlock helper and checkpoint it."""

    def rate_in_force_run(
        self, x: np.ndarray, *, rate: float, rates_in_force: Sequence[float], seed: int, dtype: str, **params: Any
    ) -> Sequence[Output]:
        """For each value: a fresh layer configured with ``rate`` and seeded with ``seed``, the
        value set as its rate in force past every check (PyTorch ``p_current``, Keras
        ``current_rate``, a traced JAX call-time rate), called once in training on ``x`` cast
        to ``dtype``."""

    def onnx_export(self, *, rank: int) -> OnnxExport:
        """Export a small model of ``rank`` holding the layer to ONNX in inference mode, and run it in the framework."""

    def data_parallel_run(self, *, rate: float, block_size: Any, scale: str, per_channel: bool) -> DataParallelRun:
        """Train under the framework's data-parallel engine, and call a layer so made once on every replica."""
