"""The pytest plugin: one test per spec case for the implementation named on the command line.

``pytest -p dropblock_conformance.plugin --pyargs dropblock_conformance.test_suite
--dropblock-impl torch`` (or ``python -m dropblock_conformance torch``). Adapters are
found through the ``dropblock.conformance`` entry-point group. Cases listed in the
adapter's ``expected_failures`` are marked strict xfail (with their reason); cases whose
data format or dtype the implementation does not offer, and framework-only behaviours
(``applies_to: frameworks``) for the suite's own oracle, are skipped as not applicable.
Only the oracle itself (``OracleAdapter``, not a subclass) gets that n/a: an adapter
cannot opt out of the framework-only behaviours by declaring itself something else.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from .oracle_adapter import OracleAdapter
from .spec import Case, all_cases, behaviour

GROUP = "dropblock.conformance"
NOT_APPLICABLE = "not applicable"
DESELECTED = "deselected"


def load_adapter(name: str) -> Any:
    """The adapter registered under ``name`` in the ``dropblock.conformance`` group."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in found:
        raise LookupError(f"no dropblock conformance adapter named {name!r}; installed: {sorted(found)}")
    return found[name].load()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dropblock conformance")
    group.addoption("--dropblock-impl", default=None, help="adapter name (entry point) to test")
    group.addoption(
        "--dropblock-report",
        default=None,
        help="write this run's JSON report here: implementation, behaviours, cases and statements",
    )


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--dropblock-impl", default=None)
    if name:
        config._dropblock_adapter = load_adapter(name)  # type: ignore[attr-defined]
        config._dropblock_outcomes = {}  # type: ignore[attr-defined]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_case" in metafunc.fixturenames:
        cases = list(all_cases())
        metafunc.parametrize("conformance_case", cases, ids=[c.id for c in cases])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    adapter = getattr(config, "_dropblock_adapter", None)
    if adapter is None:
        return
    for item in items:
        case = _case(item)
        if case is None:
            continue
        reason = adapter.expected_failures.get(case.id) or adapter.expected_failures.get(case.behaviour_id)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
        skip = not_applicable(adapter, case)
        if skip:
            item.add_marker(pytest.mark.skip(reason=f"{NOT_APPLICABLE}: {skip}"))


def not_applicable(adapter: Any, case: Case) -> str | None:
    if behaviour(case.behaviour_id).applies_to == "frameworks" and type(adapter) is OracleAdapter:
        return (
            f"{adapter.name} is not a framework: it has no compiler, exporter, data-parallel engine "
            "or unchecked rate in force"
        )
    data_format = case.get("data_format")
    if data_format and data_format not in adapter.data_formats:
        return f"{adapter.name} takes {', '.join(adapter.data_formats)} input only"
    dtype = case.get("dtype")
    if dtype in ("float16", "bfloat16", "float32", "float64") and dtype not in adapter.dtypes:
        return f"{adapter.name} does not support {dtype}"
    return None


def _case(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("conformance_case") if callspec else None


@pytest.fixture(scope="session")
def adapter(request: pytest.FixtureRequest) -> Any:
    found = getattr(request.config, "_dropblock_adapter", None)
    if found is None:
        pytest.skip("no --dropblock-impl given")
    return found


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    outcomes = getattr(_CONFIG.get("config"), "_dropblock_outcomes", None)
    if outcomes is None or "[" not in report.nodeid:
        return
    case_id = report.nodeid.split("[", 1)[1][:-1]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            outcome = "xfail" if report.skipped else "fail"
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            outcome = "n/a" if NOT_APPLICABLE in reason else "skip"
        else:
            outcome = "pass" if report.passed else "fail"
        outcomes[case_id] = outcome


_CONFIG: dict[str, pytest.Config] = {}


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Cases left out on purpose (``-k``, ``-m``) are reported as ``deselected``, not as failures."""
    outcomes = getattr(items[0].config, "_dropblock_outcomes", None) if items else None
    if outcomes is None:
        return
    for item in items:
        case = _case(item)
        if case is not None:
            outcomes[case.id] = DESELECTED


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config


def behaviour_outcomes(case_outcomes: dict[str, str]) -> dict[str, str]:
    """Fold case outcomes into one per behaviour: fail > skip > deselected > xfail > pass > n/a."""
    folded: dict[str, list[str]] = {}
    for case_id, outcome in case_outcomes.items():
        folded.setdefault(case_id.split("[", 1)[0], []).append(outcome)
    order = ("fail", "skip", DESELECTED, "xfail", "pass", "n/a")
    return {b: next(o for o in order if o in outs) for b, outs in folded.items()}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    path = config.getoption("--dropblock-report", default=None)
    adapter = getattr(config, "_dropblock_adapter", None)
    if not path or adapter is None:
        return
    outcomes = config._dropblock_outcomes  # type: ignore[attr-defined]
    for case in all_cases():
        outcomes.setdefault(case.id, "fail")  # a case that neither ran nor was deselected cannot pass
    report = {
        "implementation": adapter.name,
        "behaviours": behaviour_outcomes(outcomes),
        "cases": dict(sorted(outcomes.items())),
        "statements": {b: behaviour(b).statement for b in behaviour_outcomes(outcomes)},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
