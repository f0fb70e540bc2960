"""``python -m dropblock_bench run torch|tf|jax [options]`` or ``python -m dropblock_bench report [options]``."""

from __future__ import annotations

import importlib
import sys

USAGE = "usage: python -m dropblock_bench run {torch,tf,jax} [--out FILE --rounds N ...] | report [--results DIR ...]"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"] and len(args) >= 2 and args[1] in ("torch", "tf", "jax"):
        module = importlib.import_module(f"dropblock_bench.{args[1]}_bench")
        return int(module.main(args[2:]))
    if args[:1] == ["report"]:
        from .report import main as report_main

        return report_main(args[1:])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
