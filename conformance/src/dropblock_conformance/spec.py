"""Loading ``shared_spec/dropblock.yaml`` into behaviours and cases."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SPEC_FILE = "dropblock.yaml"
SCHEMA_FILE = "dropblock.schema.json"
GOLDEN_FILE = "golden/deterministic.json"
PARAM_NAMES = ("rate", "block_size", "data_format", "per_channel", "scale")


def spec_dir() -> Path:
    """Where the spec lives: ``$DROPBLOCK_SPEC_DIR``, else ``spec_data`` (in a checkout, a link to ``shared_spec``)."""
    candidates = [os.environ.get("DROPBLOCK_SPEC_DIR"), Path(__file__).parent / "spec_data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / SPEC_FILE).is_file():
            return Path(candidate)
    raise FileNotFoundError(f"{SPEC_FILE} not found; set DROPBLOCK_SPEC_DIR to the shared_spec folder")


@dataclass(frozen=True)
class Behaviour:
    id: str
    statement: str
    source: str
    check: str
    how: str
    applies_to: str
    tolerance: Mapping[str, Any]
    #: Implementation name -> the calls its adapter must report (``inference-identity``).
    required_calls: Mapping[str, Sequence[str]] = field(default_factory=dict)
    cases: tuple[Case, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Case:
    behaviour_id: str
    name: str
    check: str
    values: Mapping[str, Any]

    @property
    def id(self) -> str:
        return f"{self.behaviour_id}[{self.name}]"

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def params(self) -> dict[str, Any]:
        """The layer parameters of the case, by canonical name."""
        return {k: self.values[k] for k in PARAM_NAMES if k in self.values}

    @property
    def rank(self) -> int:
        return int(self.values["rank"]) if "rank" in self.values else len(self.values["shape"]) - 2


@cache
def load_raw(directory: Path | None = None) -> dict[str, Any]:
    with open((directory or spec_dir()) / SPEC_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_schema(directory: Path | None = None) -> dict[str, Any]:
    with open((directory or spec_dir()) / SCHEMA_FILE, encoding="utf-8") as f:
        return json.load(f)


@cache
def behaviours(directory: Path | None = None) -> tuple[Behaviour, ...]:
    raw = load_raw(directory)
    out = []
    for entry in raw["behaviours"]:
        cases = tuple(
            Case(
                behaviour_id=entry["id"],
                name=case["name"],
                check=case.get("check", entry["check"]),
                values={**raw["defaults"], **case},
            )
            for case in entry["cases"]
        )
        out.append(
            Behaviour(
                id=entry["id"],
                statement=entry["statement"],
                source=entry["source"],
                check=entry["check"],
                how=entry["how"],
                applies_to=entry.get("applies_to", "all"),
                tolerance=entry.get("tolerance", {}),
                required_calls=entry.get("required_calls", {}),
                cases=cases,
            )
        )
    return tuple(out)


def behaviour(behaviour_id: str) -> Behaviour:
    return next(b for b in behaviours() if b.id == behaviour_id)


def all_cases() -> Iterator[Case]:
    for b in behaviours():
        yield from b.cases


@cache
def golden(directory: Path | None = None) -> dict[str, Any]:
    with open((directory or spec_dir()) / GOLDEN_FILE, encoding="utf-8") as f:
        return json.load(f)
