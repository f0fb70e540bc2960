"""The docstring examples and the README's Python blocks run as written."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MODULES = [
    "dropblock_torch",
    "dropblock_torch.functional",
    "dropblock_torch.modules",
    "dropblock_torch.schedule",
    "dropblock_torch._geometry",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the ONNX example writes model.onnx
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the README has no Python example"
    for block in blocks:
        if "torch.onnx" in block:  # the exporter's own packages, from the [test] extra
            pytest.importorskip("onnxscript")
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
