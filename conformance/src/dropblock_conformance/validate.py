"""``python -m dropblock_conformance.validate``: the spec against its JSON Schema, plus the
rules a schema cannot say (unique ids, every behaviour has a check, golden cases stored)."""

from __future__ import annotations

import sys

import jsonschema

from .checks import CHECKS
from .spec import all_cases, behaviours, golden, load_raw, load_schema, spec_dir

REQUIRED_IDS = (
    "inference-identity",
    "rate-zero-identity",
    "rate-one-zeros",
    "rate-validation",
    "block-size-validation",
    "block-clamp",
    "valid-region-seeds",
    "block-geometry",
    "expected-drop-fraction",
    "per-channel",
    "scale",
    "dtype",
    "shapes",
    "determinism",
    "gradient",
    "compile",
    "schedule",
    "onnx-inference",
    "data-parallel",
)


def problems() -> list[str]:
    found = []
    jsonschema.validate(load_raw(), load_schema())
    ids = [b.id for b in behaviours()]
    if len(set(ids)) != len(ids):
        found.append("duplicate behaviour ids")
    missing = [i for i in REQUIRED_IDS if i not in ids]
    found += [f"behaviour {i!r} missing" for i in missing]
    found += [f"behaviour {b.id!r} has no check function" for b in behaviours() if b.id not in CHECKS]
    case_ids = [c.id for c in all_cases()]
    if len(set(case_ids)) != len(case_ids):
        found.append("duplicate case names within a behaviour")
    stored = golden()["cases"]
    found += [f"golden case {c.id} not stored" for c in all_cases() if c.get("golden") and c.id not in stored]
    for b in behaviours():
        if b.check == "statistical" and "derivation" not in b.tolerance:
            found.append(f"statistical behaviour {b.id!r} lacks a tolerance derivation")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"spec problem: {problem}", file=sys.stderr)
    if not found:
        counts = f"{len(behaviours())} behaviours, {len(list(all_cases()))} cases"
        print(f"{spec_dir() / 'dropblock.yaml'}: {counts}, valid")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
