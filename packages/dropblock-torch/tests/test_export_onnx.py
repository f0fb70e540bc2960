"""ONNX export in eval mode (dynamo exporter) leaves no trace of DropBlock."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from dropblock_torch._onnx_check import onnx_check

pytestmark = pytest.mark.slow


def test_onnx_export_2d() -> None:
    checks = onnx_check(2)
    assert checks
    assert all(v is True for v in checks.values()), checks
