"""The plain result objects an implementation hands back to the conformance suite.

They live here, in the framework-free rules every package vendors, so that each package's
conformance adapter builds them without importing the suite (``dropblock_conformance``
re-exports them as part of its ``Adapter`` contract).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CompileResult", "DataParallelRun", "OnnxExport", "Output", "ScheduleResult"]


@dataclass(frozen=True)
class Output:
    """A framework output brought back to NumPy.

    ``values`` is a float64 copy (integers and bools are never produced by a
    conforming layer); ``dtype`` is the framework's dtype name, normalised to one of
    ``DTYPES``.
    """

    values: np.ndarray
    dtype: str


@dataclass(frozen=True)
class CompileResult:
    """Outputs of one compiled callable fed several rates, and how often it compiled.

    ``compilations`` counts traces/compilations of the compiled callable over all calls
    (1 means changing the rate did not retrace or recompile).
    """

    outputs: Sequence[Output]
    compilations: int


@dataclass(frozen=True)
class ScheduleResult:
    """Rates a scheduled layer used after given steps, and after a checkpoint round trip.

    ``rates[i]`` is the rate in force after ``probe_steps[i]`` steps. ``restored_rate``
    is the rate in force in a fresh model restored from a checkpoint saved after
    ``restore_step`` steps, and ``continued_rate`` the rate after one more step there.
    """

    rates: Sequence[float]
    restored_rate: float
    continued_rate: float


@dataclass(frozen=True)
class OnnxExport:
    """A small model holding the layer, exported to ONNX in inference mode, and its framework outputs.

    ``model`` is the serialized ``ModelProto``, exported with a symbolic batch dimension.
    ``runs`` pairs inputs of at least two batch sizes (float32, in the model's layout) with
    the framework's own inference-mode output for each; the suite runs the exported model
    in onnxruntime and judges everything else itself.
    """

    model: bytes
    runs: Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DataParallelRun:
    """One training-mode call of the layer under a data-parallel engine, replica by replica.

    ``inputs[r]`` and ``outputs[r]`` are replica ``r``'s local input (non-zero values) and
    its output, in ``data_format``, as float64 copies of float32 values. ``checks`` are
    the engine-level sub-checks no output shows (gradients in sync across ranks, a
    ``fit`` that runs, reproducibility), each ``True`` or a failure reason; the suite
    judges the masks and the scale from the outputs itself.
    """

    data_format: str
    inputs: Sequence[np.ndarray]
    outputs: Sequence[np.ndarray]
    checks: Mapping[str, bool | str] = field(default_factory=dict)
