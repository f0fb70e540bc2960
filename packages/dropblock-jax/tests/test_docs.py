"""The README's Python blocks run as written (docstrings: `pytest --doctest-modules src/dropblock_jax`)."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        if "jax2onnx" in block:
            pytest.importorskip("jax2onnx")
        exec(compile(block, str(README), "exec"), namespace)
