"""The conformance suite: one test per case of ``shared_spec/dropblock.yaml``."""

from __future__ import annotations

from typing import Any

from .checks import run_case
from .spec import Case, behaviour


def test_case(adapter: Any, conformance_case: Case) -> None:
    run_case(adapter, behaviour(conformance_case.behaviour_id), conformance_case)
