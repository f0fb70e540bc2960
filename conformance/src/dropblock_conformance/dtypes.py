"""Rounding float64 values to the dtypes under test, NumPy having no bfloat16."""

from __future__ import annotations

import numpy as np

_ULP_BITS = {"float16": 10, "bfloat16": 7, "float32": 23, "float64": 52}


def round_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """Round ``values`` to ``dtype`` (round to nearest even) and return them as float64."""
    values = np.asarray(values, dtype=np.float64)
    if dtype == "bfloat16":
        bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        return rounded.astype(np.uint32).view(np.float32).astype(np.float64)
    if dtype not in _ULP_BITS:
        raise ValueError(f"unknown float dtype {dtype!r}")
    return values.astype(dtype).astype(np.float64)


def ulp(values: np.ndarray, dtype: str) -> np.ndarray:
    """One unit in the last place of each value in ``dtype`` (normal numbers)."""
    exponent = np.floor(np.log2(np.maximum(np.abs(values), np.finfo(np.float64).tiny)))
    return np.exp2(exponent - _ULP_BITS[dtype])


def scale_dtype(dtype: str) -> str:
    """The precision the scale factor is computed in: float32, or float64 for float64."""
    return "float64" if dtype == "float64" else "float32"
