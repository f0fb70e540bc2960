"""Markdown rendered at build time from the repository's sources of truth.

- :func:`spec_markdown`: every behaviour of ``shared_spec/dropblock.yaml`` (id, statement,
  source, check, how, tolerance and a table of its cases), so the page cannot drift.
- :func:`matrix_markdown`: the conformance matrix from ``build/conformance/report.json``
  (written by ``python -m nox -s conformance``), or a note saying how to produce it.
- :func:`conformance_readme_markdown`: ``conformance/README.md`` with its headings demoted.
- :func:`drop_fraction_table`: expected drop fractions from the oracle's closed form.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

OUTCOME_ICONS = {
    "pass": "pass",
    "n/a": "n/a",
    "xfail": "**xfail**",
    "fail": "**FAIL**",
    "skip": "**skip**",
    "deselected": "*not run*",
    "missing": "*missing*",
}


def _value(value: Any) -> str:
    """A case value as the YAML spells it, in a code span."""
    if isinstance(value, float) and math.isnan(value):
        text = ".nan"
    else:
        text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
        text = text.removesuffix("...").strip()
    return f"`{text}`".replace("|", "\\|")


def _cell(text: str) -> str:
    """Prose from the YAML on one table line; ``*`` outside code spans is literal, not emphasis."""
    parts = " ".join(str(text).split()).split("`")
    parts[::2] = [part.replace("*", "\\*") for part in parts[::2]]
    return "`".join(parts).replace("|", "\\|")


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def load_spec(root: Path) -> dict[str, Any]:
    with (root / "shared_spec" / "dropblock.yaml").open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.safe_load(handle)
    return spec


def _case_columns(cases: list[Mapping[str, Any]]) -> list[str]:
    columns: list[str] = []
    for case in cases:
        columns += [key for key in case if key not in columns]
    columns.remove("name")
    return ["name", *columns]


def spec_markdown(root: Path) -> str:
    spec = load_spec(root)
    behaviours = spec["behaviours"]
    defaults = spec.get("defaults", {})
    out = [
        f"Rendered from `shared_spec/dropblock.yaml` (spec version {spec.get('spec_version', '?')}) "
        f"when this site was built: {len(behaviours)} behaviours, "
        f"{sum(len(b.get('cases', [])) for b in behaviours)} cases.",
        "",
        "Defaults for every case unless the case says otherwise: "
        + ", ".join(f"`{k}` = {_value(v)}" for k, v in defaults.items())
        + ".",
        "",
    ]
    out += _table(
        ["behaviour", "check", "cases", "source"],
        (
            [f"[`{b['id']}`](#{b['id']})", f"`{b['check']}`", str(len(b.get("cases", []))), _cell(b["source"])]
            for b in behaviours
        ),
    )
    for behaviour in behaviours:
        out += ["", f"## `{behaviour['id']}` {{#{behaviour['id']}}}", "", _cell(behaviour["statement"]), ""]
        facts = [
            ["source", _cell(behaviour["source"])],
            ["check", f"`{behaviour['check']}`"],
        ]
        if "applies_to" in behaviour:
            facts.append(["applies to", f"`{behaviour['applies_to']}`"])
        facts.append(["how", _cell(behaviour["how"])])
        for key, value in (behaviour.get("tolerance") or {}).items():
            facts.append([f"tolerance: `{key}`", _cell(value) if key == "derivation" else _value(value)])
        out += _table(["", ""], facts)
        cases = behaviour.get("cases", [])
        if cases:
            columns = _case_columns(cases)
            out += [
                "",
                f"**Cases** ({len(cases)}; test ids `{behaviour['id']}[name]`; a blank cell is the default):",
                "",
            ]
            out += _table(
                [f"`{c}`" for c in columns],
                ([_value(case[c]) if c in case else "" for c in columns] for case in cases),
            )
    return "\n".join(out) + "\n"


def _case_summary(report: Path) -> str:
    try:
        cases = json.loads(report.read_text(encoding="utf-8")).get("cases", {})
    except (OSError, ValueError):
        return ""
    counts: dict[str, int] = {}
    for outcome in cases.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))


def matrix_markdown(root: Path) -> str:
    reports = root / "build" / "conformance"
    path = reports / "report.json"
    if not path.is_file():
        return (
            '!!! note "No conformance report in this build"\n\n'
            "    This site was built without `build/conformance/report.json`. Run\n\n"
            "    ```bash\n    python -m nox -s conformance\n    ```\n\n"
            "    then rebuild the docs (`python -m nox -s docs`) to show the behaviour x implementation matrix here.\n"
        )
    matrix: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    spec_ids = [b["id"] for b in load_spec(root)["behaviours"]]
    names = list(matrix)
    built = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"From `build/conformance/report.json`, written {built} by `python -m nox -s conformance` "
        "in the checkout this site was built from.",
        "",
    ]
    ids = spec_ids + [i for name in names for i in matrix[name] if i not in spec_ids]
    ids = list(dict.fromkeys(ids))
    out += _table(
        ["behaviour", *[f"`{n}`" for n in names]],
        (
            [f"[`{i}`](spec.md#{i})" if i in spec_ids else f"`{i}`"]
            + [OUTCOME_ICONS.get(matrix[n].get(i, "missing"), matrix[n].get(i, "missing")) for n in names]
            for i in ids
        ),
    )
    summaries = [(n, _case_summary(reports / f"{n}.json")) for n in names]
    summaries = [(n, s) for n, s in summaries if s]
    if summaries:
        out += ["", "Cases per implementation (from `build/conformance/<implementation>.json`):", ""]
        out += [f"- `{n}`: {s}" for n, s in summaries]
    return "\n".join(out) + "\n"


def conformance_readme_markdown(root: Path) -> str:
    """``conformance/README.md`` without its title, every heading one level down."""
    lines = (root / "conformance" / "README.md").read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    fenced = False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("# "):
            continue
        if not fenced and line.startswith("#"):
            line = "#" + line
        out.append(line)
    return "\n".join(out).strip() + "\n"


def drop_fraction_table() -> str:
    """The closed-form expected drop fraction for common settings."""
    from dropblock_conformance import oracle
    from dropblock_core import gamma

    settings = [
        ((56, 56), 7, 0.1),
        ((28, 28), 5, 0.1),
        ((14, 14), 7, 0.1),
        ((14, 14), 7, 0.5),
        ((14, 14), 7, 0.9),
        ((9, 9), 7, 0.1),
        ((7, 7), 7, 0.1),
        ((12, 6), 3, 0.2),
        ((20, 8), 3, 0.2),
        ((4, 4), 7, 0.3),
    ]
    rows = []
    for spatial, k, rate in settings:
        block = (k, k)
        rows.append(
            [
                f"{spatial[0]}x{spatial[1]}",
                str(k),
                f"{rate:g}",
                f"{gamma(rate, spatial, block):.5f}",
                f"{oracle.expected_drop_fraction(rate, spatial, block):.4f}",
            ]
        )
    return "\n".join(_table(["map", "block", "rate r", "gamma", "E[dropped fraction]"], rows)) + "\n"


LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)[^)]*\)")
DEV_SECTIONS = ("tests", "testing", "development", "develop")


def _neutral_link(match: re.Match[str]) -> str:
    image, text, target = match.groups()
    if target.startswith(("http://", "https://", "#")):
        return match.group(0)
    return "" if image else text


def readme_markdown(text: str, required: tuple[str, ...]) -> str | None:
    """A package README as guide content: no title, no test section, no repository-relative links.

    ``None`` when the README is empty or lacks a ``## `` heading in ``required`` (other pages
    link to those sections); the hook then fails the strict build.
    """
    out: list[str] = []
    fenced = skipping = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            continue
        elif not fenced and line.startswith("## "):
            skipping = line[3:].strip().lower() in DEV_SECTIONS
        if not skipping:
            out.append(line if fenced else LINK.sub(_neutral_link, line))
    body = "\n".join(out).strip()
    headings = {line[3:].strip() for line in body.splitlines() if line.startswith("## ")}
    if not body or any(name not in headings for name in required):
        return None
    return body + "\n"
