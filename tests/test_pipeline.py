"""The pipeline in-process: failure isolation per vendor."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from pwtest import ZENDESK, PageServer, write_config

from policy_watch import collect, pipeline
from policy_watch.config import load_config
from policy_watch.fetch import Fetcher
from policy_watch.store import Store
from policy_watch.store.part import query


def test_a_bug_on_one_page_does_not_abort_the_others(
    tmp_path: Path, pages: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages.serve("/good", (ZENDESK / "v1.html").read_bytes())
    pages.serve("/bad", (ZENDESK / "v1.html").read_bytes())
    config = load_config(write_config(tmp_path, [("Good", pages.url("/good")), ("Bad", pages.url("/bad"))]))
    real = collect.parse_page

    def flaky(body: bytes, **kw: Any) -> Any:
        if str(kw.get("source", "")).endswith("/bad"):
            raise RuntimeError("boom")
        return real(body, **kw)

    monkeypatch.setattr(collect, "parse_page", flaky)
    store = Store.open(config.settings.database)
    with Fetcher(pipeline.fetch_options(config)) as fetcher:
        report = pipeline.run_check(config, store, fetcher)
    by = {r.vendor: r for r in report.results}
    assert by["Good"].status == "baseline"
    assert by["Bad"].status == "error" and "internal error" in (by["Bad"].error or "")
    assert query(store.db.conn, "select count(*) as n from snapshots")[0]["n"] == 1
    store.close()


def test_a_database_error_that_undoes_the_batch_is_reported_not_hidden(
    tmp_path: Path, pages: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that ends the whole write transaction (here a RAISE(ROLLBACK) trigger; an I/O
    error does the same) undoes the vendors recorded since the last commit: they are reported as
    not recorded, the run goes on, and the next run records them."""
    for i in range(4):
        pages.serve(f"/v{i}", (ZENDESK / "v1.html").read_bytes())
    path = write_config(
        tmp_path, [(f"V{i}", pages.url(f"/v{i}")) for i in range(4)], settings="concurrency = 1"
    )
    config = load_config(path)
    store = Store.open(config.settings.database)
    # One commit for the whole run, however slow the machine: the batch's commit after a second
    # would keep V0 and V1.
    monkeypatch.setattr(store, "batch", functools.partial(store.batch, seconds=3600))
    store.db.execute(
        "create trigger boom before insert on snapshots when new.vendor_id = (select id from vendors where name = 'V2')"
        " begin select raise(rollback, 'boom'); end"
    )
    try:
        report = pipeline.run_check(config, store, deliver_alerts=False)
        first = {r.vendor: (r.status, r.error or "") for r in report.results}
        stored = {
            r["name"]
            for r in query(
                store.db.conn, "select v.name from snapshots s join vendors v on v.id = s.vendor_id"
            )
        }
        store.db.execute("drop trigger boom")
        second = {r.vendor: r.status for r in pipeline.run_check(config, store, deliver_alerts=False).results}
    finally:
        store.close()
    assert first["V0"][0] == first["V1"][0] == "error" and "not recorded" in first["V0"][1], first
    assert first["V2"][0] == "error" and "boom" in first["V2"][1], first
    assert first["V3"][0] == "baseline", first
    assert stored == {"V3"}
    assert second == {"V0": "baseline", "V1": "baseline", "V2": "baseline", "V3": "unchanged"}


def test_company_names_are_read_as_the_run_goes_and_a_failure_there_fails_no_vendor(
    tmp_path: Path, pages: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each commit the spellings of the pages committed so far are read into entity_names,
    while the other pages are still fetched. That table is derived data: when it cannot be written
    every vendor is still recorded, and the run says what failed."""
    for i in range(3):
        pages.serve(f"/v{i}", (ZENDESK / "v1.html").read_bytes())
    config = load_config(
        write_config(tmp_path, [(f"V{i}", pages.url(f"/v{i}")) for i in range(3)], settings="concurrency = 1")
    )
    store = Store.open(config.settings.database)
    monkeypatch.setattr(store, "batch", functools.partial(store.batch, size=1))  # a commit per vendor
    seen: list[int] = []  # spellings already in the table as each vendor is recorded
    real = pipeline.record_vendor

    def record(*args: Any) -> Any:
        seen.append(query(store.db.conn, "select count(*) as n from entity_names")[0]["n"])
        return real(*args)

    monkeypatch.setattr(pipeline, "record_vendor", record)
    with Fetcher(pipeline.fetch_options(config)) as fetcher:
        report = pipeline.run_check(config, store, fetcher)
    assert [r.status for r in report.results] == ["baseline"] * 3 and not report.errors
    assert seen[0] == 0 and seen[1] > 0, seen  # read after the first commit, before the run ended

    store.db.execute(
        "create trigger refuse before insert on entity_names begin select raise(abort, 'no'); end"
    )
    pages.serve("/v0", (ZENDESK / "v2.html").read_bytes())
    pages.serve("/v1", (ZENDESK / "v2.html").read_bytes())
    with Fetcher(pipeline.fetch_options(config)) as fetcher:
        report = pipeline.run_check(config, store, fetcher)
    statuses = {r.vendor: r.status for r in report.results}
    assert statuses == {"V0": "changed", "V1": "changed", "V2": "unchanged"}, report.results
    assert [e for e in report.errors if "company names" in e and "no" in e], report.errors
    assert query(store.db.conn, "select count(*) as n from snapshots")[0]["n"] == 5
    # nothing else waits on the names: the run is on record (the scheduler reads it)
    assert query(store.db.conn, "select count(*) as n from runs")[0]["n"] == 2
    store.close()
