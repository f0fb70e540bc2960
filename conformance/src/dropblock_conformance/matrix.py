"""``python -m dropblock_conformance.matrix``: fold per-implementation reports into the matrix.

Prints behaviour x implementation, writes ``{implementation: {behaviour: outcome}}`` and
exits non-zero if any cell is neither ``pass``, ``n/a`` nor ``xfail``. An implementation
without a report shows as ``missing`` in every cell, never as passing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .spec import behaviours

GOOD = ("pass", "n/a", "xfail")


def load(reports: Path, implementation: str) -> dict[str, str]:
    path = reports / f"{implementation}.json"
    ids = [b.id for b in behaviours()]
    if not path.is_file():
        return dict.fromkeys(ids, "missing")
    found = json.loads(path.read_text(encoding="utf-8"))["behaviours"]
    return {i: found.get(i, "missing") for i in ids}


def render(matrix: dict[str, dict[str, str]]) -> str:
    names = list(matrix)
    ids = [b.id for b in behaviours()]
    width = max(len(i) for i in ids)
    lines = [f"{'behaviour':<{width}}  " + "  ".join(f"{n:>8}" for n in names)]
    lines.append("-" * len(lines[0]))
    lines += [f"{i:<{width}}  " + "  ".join(f"{matrix[n][i]:>8}" for n in names) for i in ids]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("implementations", nargs="+")
    args = parser.parse_args(argv)
    matrix = {name: load(args.reports, name) for name in args.implementations}
    print(render(matrix))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(matrix, indent=1) + "\n", encoding="utf-8")
    bad = [(n, i, o) for n, cells in matrix.items() for i, o in cells.items() if o not in GOOD]
    for name, behaviour_id, outcome in bad:
        print(f"{name}: {behaviour_id} is {outcome}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
