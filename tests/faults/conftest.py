"""Fixtures of the fault-injection suite, and the summary line it prints after the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import MATRIX, CaseRecord, World

HERE = Path(__file__).parent


def _fault_class(item: Any) -> str | None:
    path = Path(str(item.path))
    if path.parent != HERE or not path.name.startswith("test_"):
        return None
    return path.stem.removeprefix("test_")


@pytest.fixture
def record(request: pytest.FixtureRequest) -> CaseRecord:
    rec = MATRIX.cases.setdefault(request.node.nodeid, CaseRecord(_fault_class(request.node) or "other"))
    return rec


@pytest.fixture
def world(tmp_path: Path, pages: Any, record: CaseRecord) -> Iterator[World]:
    w = World(tmp_path, pages, record)
    yield w
    w.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        cls = _fault_class(item)
        if cls is not None:
            MATRIX.cases.setdefault(item.nodeid, CaseRecord(cls))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    case = MATRIX.cases.get(report.nodeid)
    if case is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            case.outcome = "xfailed" if report.skipped else "failed"
        else:
            case.outcome = "passed" if report.passed else "skipped" if report.skipped else "failed"
    elif report.when == "teardown" and report.failed:
        case.outcome = "failed"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if any(c.outcome != "not run" for c in MATRIX.cases.values()):
        terminalreporter.write_line(MATRIX.summary())
