"""Replay eight real page histories through the real pipeline: no false alert, no missed change.

Each version is served in turn from a real HTTP server on 127.0.0.1 and checked by
``pipeline.run_check`` with a real Fetcher and a real SQLite file; the rows written to the
``changes`` table must be exactly the fixture's changes for every transition. A transition of
class ``structure`` must raise the structure alarm, report nothing and keep the baseline.
``python tests/replay_report.py`` prints the same figures per series.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pwtest import PageServer
from replay_report import PAGES, SERIES, SeriesResult, load_series, replay


def _report(result: SeriesResult) -> str:
    lines = [result.summary()] + [t.describe() for t in result.failed]
    return "\n".join(lines)


@pytest.mark.parametrize("series", SERIES)
def test_replay_reports_exactly_the_expected_changes(series: str, tmp_path: Path, pages: PageServer) -> None:
    result = replay(series, tmp_path, pages)
    print(f"\nreplay {result.summary()}")
    assert len(result.transitions) == len(load_series(series)["transitions"])
    if result.failed:
        pytest.fail("replay found false alerts or missed changes:\n" + _report(result), pytrace=False)


def test_fixtures_cover_every_served_page() -> None:
    """Every page a transition names is in tests/fixtures/replay/pages (CI has no shared corpus)."""
    for series in SERIES:
        for step in load_series(series)["transitions"]:
            for name in (step["from"], step["to"], step.get("compare_to")):
                assert name is None or (PAGES / series / name).is_file(), f"{series}: missing page {name}"
