"""The docstring examples and the README's code blocks run as written."""

from __future__ import annotations

import doctest
import importlib
import pathlib
import re

import pytest

MODULES = ["dropblock_tf", "dropblock_tf.ops", "dropblock_tf.layers", "dropblock_tf.schedule"]
README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_layer_docstrings_have_examples():
    from dropblock_tf import DropBlock1D, DropBlock2D, DropBlock3D

    for cls in (DropBlock1D, DropBlock2D, DropBlock3D):
        assert f">>> layer = DropBlock{cls.rank}D(" in cls.__doc__


@pytest.mark.parametrize("index", range(len(re.findall(r"```python\n", README.read_text()))))
def test_readme_code_blocks(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    block = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)[index]
    if 'format="onnx"' in block:  # the [onnx] extra: not installed where the lowest versions are tested
        pytest.importorskip("tf2onnx")
    exec(compile(block, f"README.md block {index}", "exec"), {})
