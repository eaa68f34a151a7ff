"""Replay real page histories through the real pipeline and count false alerts and missed changes.

Each series in tests/fixtures/replay/<series>.json lists every version-to-version transition with
the changes a reader of both tables expects. The replay serves each version in turn from a real
HTTP server on 127.0.0.1, runs ``pipeline.run_check`` with a real Fetcher and a real SQLite store,
and compares the rows written to the ``changes`` table with the expected ones.

Run ``python tests/replay_report.py [series ...]`` for the per-series figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pwtest import FIXTURES, PageServer, write_config

from policy_watch import pipeline
from policy_watch.config import Config, load_config
from policy_watch.fetch import Fetcher
from policy_watch.parse import parse_page
from policy_watch.store import Store, content_hash
from policy_watch.store.part import query

REPLAY = FIXTURES / "replay"
PAGES = REPLAY / "pages"
SERIES = sorted(p.stem for p in REPLAY.glob("*.json"))

Key = tuple[str, str, str, str | None, str | None, str | None]


def change_key(c: dict[str, Any]) -> Key:
    return (c["kind"], c["section"], c["entity"], c["field"], c["old"], c["new"])


def show(k: Key) -> str:
    kind, section, entity, fld, old, new = k
    where = f"[{section}] " if section else ""
    what = f" {fld}: {old!r} -> {new!r}" if fld and kind == "changed" else (f" {fld}" if fld else "")
    return f"{kind} {where}{entity!r}{what}"


@dataclass
class Transition:
    """What one run reported for one version-to-version step, against what was expected."""

    frm: str
    to: str
    cls: str
    status: str
    got: list[Key] = field(default_factory=list)  # rows the run wrote to the changes table
    want: list[Key] = field(default_factory=list)  # the fixture's changes (none for a structure step)
    problems: list[str] = field(default_factory=list)

    @property
    def false_alerts(self) -> list[Key]:
        return sorted((Counter(self.got) - Counter(self.want)).elements(), key=str)

    @property
    def missed(self) -> list[Key]:
        return sorted((Counter(self.want) - Counter(self.got)).elements(), key=str)

    @property
    def ok(self) -> bool:
        return not (self.false_alerts or self.missed or self.problems)

    def describe(self) -> str:
        lines = [f"{self.frm} -> {self.to} ({self.cls}): run status {self.status!r}"]
        lines += [f"    problem: {p}" for p in self.problems]
        lines += [f"    missed:      {show(k)}" for k in self.missed]
        lines += [f"    false alert: {show(k)}" for k in self.false_alerts]
        return "\n".join(lines)


@dataclass
class SeriesResult:
    series: str
    transitions: list[Transition]

    @property
    def false_alerts(self) -> int:
        return sum(len(t.false_alerts) for t in self.transitions)

    @property
    def missed(self) -> int:
        return sum(len(t.missed) for t in self.transitions)

    @property
    def problems(self) -> int:
        return sum(len(t.problems) for t in self.transitions)

    @property
    def failed(self) -> list[Transition]:
        return [t for t in self.transitions if not t.ok]

    def summary(self) -> str:
        return (
            f"{self.series}: {len(self.transitions)} transitions, false alerts {self.false_alerts}, "
            f"missed changes {self.missed}, other problems {self.problems}"
        )


def load_series(series: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPLAY / f"{series}.json").read_text(encoding="utf-8"))
    return data


def page(series: str, name: str) -> bytes:
    return (PAGES / series / name).read_bytes()


def _expected_hash(series: str, name: str) -> str:
    return content_hash(parse_page(page(series, name), content_type="text/html; charset=utf-8"))


def replay(series: str, workdir: Path, server: PageServer) -> SeriesResult:
    """Serve every version of ``series`` in order, run the pipeline after each, compare the changes."""
    data = load_series(series)
    steps: list[dict[str, Any]] = data["transitions"]
    path = f"/{series}"
    config = load_config(write_config(workdir, [(series, server.url(path))]))
    store = Store.open(config.settings.database)
    results: list[Transition] = []
    try:
        with Fetcher(pipeline.fetch_options(config)) as fetcher:
            server.serve(path, page(series, steps[0]["from"]))
            first = pipeline.run_check(config, store, fetcher).results[0]
            if first.status != "baseline":
                raise AssertionError(
                    f"{series}: first version {steps[0]['from']} gave {first.status}: {first.error}"
                )
            for step in steps:
                results.append(_step(series, step, config, store, fetcher, server, path))
    finally:
        store.close()
    return SeriesResult(series, results)


def _step(
    series: str,
    step: dict[str, Any],
    config: Config,
    store: Store,
    fetcher: Fetcher,
    server: PageServer,
    path: str,
) -> Transition:
    vid = store.vendors.id_of(series)
    assert vid is not None
    before = store.snapshots.baseline(vid)
    assert before is not None
    last_id = query(store.db.conn, "select coalesce(max(id), 0) as n from changes")[0]["n"]
    server.serve(path, page(series, step["to"]))
    result = pipeline.run_check(config, store, fetcher).results[0]
    stored = [
        change_key(r)
        for r in query(
            store.db.conn,
            "select kind, section, entity, field, old, new from changes where id > ? order by id",
            [last_id],
        )
    ]
    reported = [change_key(c.to_json()) for c in result.changes]
    after = store.snapshots.baseline(vid)
    t = Transition(step["from"], step["to"], step["class"], result.status, got=stored)
    base_page = step.get("compare_to") or step["from"]
    if before.content_hash != _expected_hash(series, base_page):
        t.problems.append(f"the baseline before this run is not the snapshot of {base_page}")
    if Counter(stored) != Counter(reported):
        t.problems.append(f"changes table ({len(stored)} rows) and run result ({len(reported)}) disagree")
    if step["class"] == "structure":
        if result.status != "suspect":
            t.problems.append("no structure alarm: the page lost its list but the run said " + result.status)
        if after is None or after.id != before.id:
            t.problems.append("the last good snapshot was not kept as the baseline")
        return t
    if result.status in ("suspect", "error"):
        t.problems.append(f"unexpected {result.status}: {result.error}")
    t.want = [change_key(c) for c in step["changes"]]
    return t


def run(series: Iterable[str]) -> list[SeriesResult]:
    out = []
    for s in series:
        server = PageServer()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                out.append(replay(s, Path(tmp), server))
        finally:
            server.close()
    return out


def main(argv: list[str]) -> int:
    results = run(argv or SERIES)
    width = max(len(r.series) for r in results)
    print(f"{'series':<{width}}  transitions  false alerts  missed changes  other problems")
    for r in results:
        print(
            f"{r.series:<{width}}  {len(r.transitions):>11}  {r.false_alerts:>12}  {r.missed:>14}  {r.problems:>14}"
        )
    total_f = sum(r.false_alerts for r in results)
    total_m = sum(r.missed for r in results)
    total_p = sum(r.problems for r in results)
    print(
        f"{'total':<{width}}  {sum(len(r.transitions) for r in results):>11}  {total_f:>12}  {total_m:>14}  {total_p:>14}"
    )
    for r in results:
        for t in r.failed:
            print(f"\n{r.series}: {t.describe()}")
    return 1 if total_f or total_m or total_p else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
