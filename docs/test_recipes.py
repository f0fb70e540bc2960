"""Run the code recipes of the documentation, so the pages cannot go stale.

A recipe is a fenced ``python`` block right after an HTML comment ``<!-- recipe: FRAMEWORK -->``
(``torch``, ``tf`` or ``jax``), at any indentation (inside a content tab too). The pages with
recipes: ``onnx.md`` (one export recipe per framework) and ``index.md`` (the examples of the
home page). Each recipe runs in a temporary directory when its framework, its DropBlock
package and, for ``onnx.md``, its exporter are importable, and is skipped otherwise, so each
framework's virtualenv runs its own recipes:

    python -m pytest docs/test_recipes.py -k torch
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

DOCS = Path(__file__).parent
RECIPE = re.compile(r"^([ \t]*)<!-- recipe: (\w+) -->[ \t]*\n\s*```python\n(.*?)\n[ \t]*```", re.DOTALL | re.MULTILINE)
FRAMEWORKS = {
    "torch": ("torch", "dropblock_torch"),
    "tf": ("tensorflow", "keras", "dropblock_tf"),
    "jax": ("jax", "flax", "dropblock_jax"),
}
EXPORTERS = {"torch": ("onnxscript",), "tf": ("tf2onnx",), "jax": ("jax2onnx",)}
PAGES = {
    "onnx.md": lambda framework: (*FRAMEWORKS[framework], *EXPORTERS[framework], "onnx", "onnxruntime"),
    "index.md": lambda framework: FRAMEWORKS[framework],
}


def recipes(page: str) -> list[tuple[str, str]]:
    """``[(framework, code)]`` of one page, in page order."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [(framework, textwrap.dedent(code)) for _, framework, code in RECIPE.findall(text)]


def _cases() -> list[pytest.ParameterSet]:
    cases = []
    for page in PAGES:
        for number, (framework, code) in enumerate(recipes(page)):
            case_id = f"{page.removesuffix('.md')}-{framework}-{number}"
            cases.append(pytest.param(page, framework, code, id=case_id))
    return cases


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_framework_has_a_recipe(page: str) -> None:
    found = [framework for framework, _ in recipes(page)]
    assert set(found) == set(FRAMEWORKS), f"{page}: recipes for {found}"
    if page == "onnx.md":
        assert len(found) == len(set(found)), f"{page}: more than one recipe for a framework: {found}"


@pytest.mark.parametrize(("page", "framework", "code"), _cases())
def test_recipe(page: str, framework: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in PAGES[page](framework):
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{page}[recipe: {framework}]", "exec"), {"__name__": f"recipe_{framework}"})
