"""The JSON report of one run: what a partial run says about the cases it left out."""

from __future__ import annotations

import json
import subprocess
import sys

from dropblock_conformance.plugin import behaviour_outcomes


def test_deselected_cases_are_reported_as_such_not_as_failures(tmp_path):
    report = tmp_path / "oracle.json"
    cmd = [sys.executable, "-m", "dropblock_conformance", "oracle", "--report", str(report), "-q", "-k", "block-clamp"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    found = json.loads(report.read_text(encoding="utf-8"))
    ran = {case: outcome for case, outcome in found["cases"].items() if case.startswith("block-clamp[")}
    left_out = {outcome for case, outcome in found["cases"].items() if not case.startswith("block-clamp[")}
    assert ran
    assert set(ran.values()) == {"pass"}
    assert left_out == {"deselected"}
    assert found["behaviours"]["block-clamp"] == "pass"
    assert found["behaviours"]["dtype"] == "deselected"


def test_deselected_folds_below_a_failure_and_above_a_pass():
    assert behaviour_outcomes({"b[1]": "pass", "b[2]": "deselected"}) == {"b": "deselected"}
    assert behaviour_outcomes({"b[1]": "fail", "b[2]": "deselected"}) == {"b": "fail"}
    assert behaviour_outcomes({"b[1]": "n/a", "b[2]": "pass"}) == {"b": "pass"}
