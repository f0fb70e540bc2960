"""The dropblock conformance suite: the spec, its NumPy oracle and a pytest plugin.

Run it against an installed implementation with ``python -m dropblock_conformance torch``.
"""

from .adapter import Adapter, CompileResult, DataParallelRun, OnnxExport, Output, ScheduleResult

__all__ = ["Adapter", "CompileResult", "DataParallelRun", "OnnxExport", "Output", "ScheduleResult"]
