"""MkDocs hook: pictures and pages generated at build time (referenced from ``mkdocs.yml``).

- ``on_files``: draws the pictures from the NumPy oracle (``figures.py``) and adds them to
  the site as ``figures/*.png``; nothing is written into ``docs/``. When ``docs/benchmarks.md``
  does not exist yet (``python -m nox -s bench`` writes it), a placeholder page stands in.
- ``on_page_markdown``: replaces the markers ``<!-- dropblock:NAME -->`` with Markdown
  rendered from the repository (``render.py``): the spec, the conformance matrix, the
  conformance README, a table of expected drop fractions, and inline expected drop
  fractions (``<!-- dropblock:expected H,W,k,rate -->``) and spreads of the batch scale
  (``<!-- dropblock:scale-spread H,W,k,rate,maps -->``); a package guide includes its
  package's README (``<!-- dropblock:readme PACKAGE -->``), which must have the sections
  other pages link to: a README without them is a build warning, so an error under
  ``--strict``.
  The ``<!-- recipe: FRAMEWORK -->`` marks of the code blocks that ``docs/test_recipes.py``
  runs are removed.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))

import figures
import render

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("mkdocs.hooks.dropblock_docs")
# <!-- dropblock:expected H,W,k,rate --> : the oracle's expected drop fraction, inline.
EXPECTED = re.compile(r"<!-- dropblock:expected (\d+),(\d+),(\d+),([0-9.]+) -->")
# <!-- dropblock:scale-spread H,W,k,rate,maps --> : relative standard deviation (in %) of the
# batch scale numel / kept over `maps` independent maps, from the oracle's exact variance.
SPREAD = re.compile(r"<!-- dropblock:scale-spread (\d+),(\d+),(\d+),([0-9.]+),(\d+) -->")
# <!-- dropblock:readme PACKAGE --> : packages/PACKAGE/README.md, which must have these sections
# (the guides' anchors that other pages link to).
README = re.compile(r"<!-- dropblock:readme ([\w-]+) -->")
# <!-- recipe: FRAMEWORK --> marks a code block that docs/test_recipes.py runs; not shown.
RECIPE_MARK = re.compile(r"^[ \t]*<!-- recipe: \w+ -->[ \t]*\n", re.MULTILINE)
README_REQUIRED = ("Scheduled DropBlock", "Distributed training")

BENCHMARKS_PLACEHOLDER = """# Benchmarks

!!! note "Not generated in this checkout"

    `docs/benchmarks.md` and its chart `docs/benchmarks.png` are written by the benchmark
    harness and are not edited by hand. Generate them with

    ```bash
    python -m nox -s bench
    ```

    and rebuild the docs. The harness times, side by side in one process, each package's
    DropBlock against its framework's own dropout, `x * 2` (the memory floor), the dense
    algorithm (full-tensor Bernoulli, k x k max-pool, rescale) and the other DropBlocks where
    they install (torchvision `drop_block2d`, timm `DropBlock2d`, keras-cv `DropBlock2D`,
    miguelvr `dropblock`), in float32 and bfloat16, forward and forward+backward, with peak
    memory and the bytes saved for the backward pass.
"""


def _markers() -> dict[str, Any]:
    return {
        "spec": lambda: render.spec_markdown(ROOT),
        "conformance-matrix": lambda: render.matrix_markdown(ROOT),
        "conformance-readme": lambda: render.conformance_readme_markdown(ROOT),
        "drop-fraction-table": render.drop_fraction_table,
    }


def on_files(files: Files, config: Any) -> Files:
    for name, png in figures.all_figures().items():
        files.append(File.generated(config, f"figures/{name}", content=png))
    if files.get_file_from_path("benchmarks.md") is None:
        files.append(File.generated(config, "benchmarks.md", content=BENCHMARKS_PLACEHOLDER))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    for name, make in _markers().items():
        marker = f"<!-- dropblock:{name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    markdown = RECIPE_MARK.sub("", markdown)
    markdown = README.sub(lambda match: _readme(match.group(1), page.file.src_uri), markdown)
    markdown = SPREAD.sub(_spread, markdown)
    return EXPECTED.sub(_expected, markdown)


def _readme(package: str, page: str) -> str:
    path = ROOT / "packages" / package / "README.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    body = render.readme_markdown(text, README_REQUIRED)
    if body is None:
        log.warning(
            f"{page}: packages/{package}/README.md is missing or lacks a '## ' section among "
            f"{', '.join(README_REQUIRED)} (other pages link to them)"
        )
        return f'!!! warning "packages/{package}/README.md is missing or incomplete"\n'
    return (
        f"*The sections below are the package's README, `packages/{package}/README.md`, "
        "included when this site was built.*\n\n" + body
    )


def _spread(match: re.Match[str]) -> str:
    from dropblock_conformance import oracle

    height, width, k, maps = (int(match.group(i)) for i in (1, 2, 3, 5))
    rate = float(match.group(4))
    kept = 1.0 - oracle.expected_drop_fraction(rate, (height, width), (k, k))
    variance = oracle.drop_fraction_variance(rate, (height, width), (k, k))
    # numel / kept = 1 / (mean kept fraction over the maps): to first order its relative spread
    # is the standard deviation of that mean over its expectation.
    return f"{100.0 * (variance / maps) ** 0.5 / kept:.2f}%"


def _expected(match: re.Match[str]) -> str:
    from dropblock_conformance import oracle

    height, width, k = (int(match.group(i)) for i in (1, 2, 3))
    return f"{oracle.expected_drop_fraction(float(match.group(4)), (height, width), (k, k)):.3f}"
