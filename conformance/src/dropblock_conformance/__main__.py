"""``python -m dropblock_conformance IMPL [--report PATH] [pytest args...]``."""

from __future__ import annotations

import sys

import pytest


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print("usage: python -m dropblock_conformance IMPL [--report PATH] [pytest args...]", file=sys.stderr)
        return 2
    impl, rest = args[0], args[1:]
    if "--report" in rest:
        i = rest.index("--report")
        rest[i : i + 2] = [f"--dropblock-report={rest[i + 1]}"]
    pytest_args = ["-p", "dropblock_conformance.plugin", "--pyargs", "dropblock_conformance.test_suite"]
    return int(pytest.main([*pytest_args, f"--dropblock-impl={impl}", "-p", "no:cacheprovider", *rest]))


if __name__ == "__main__":
    sys.exit(main())
