"""Fetching and parsing in the thread pool: what a run records, stopping early, and a bug in one
vendor's handling staying that vendor's outcome."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pwtest import ZENDESK, PageServer, cli, write_config

from policy_watch import collect, pipeline
from policy_watch.config import Config, Vendor, load_config
from policy_watch.fetch import Fetcher, FetchOptions
from policy_watch.models import VendorResult
from policy_watch.store import Store
from policy_watch.store.records import VendorState


def _site(pages: PageServer, version: int) -> list[tuple[str, str]]:
    """Twelve vendors: Zendesk pages, a server error, a page that is not HTML and one without a list."""
    vendors = []
    for i in range(9):
        pages.serve(
            f"/z{i}", (ZENDESK / f"v{version if i % 3 else 1}.html").read_bytes(), ETag=f'"z{i}-{version}"'
        )
        vendors.append((f"Vendor {i}", pages.url(f"/z{i}")))
    pages.serve("/down", "<html>down</html>", status=503)
    pages.serve("/pdf", b"%PDF-1.4", Content_Type="application/pdf")
    pages.serve("/blank", "<html><body><p>We are updating this page.</p></body></html>")
    return [
        *vendors,
        ("Down", pages.url("/down")),
        ("Pdf", pages.url("/pdf")),
        ("Blank", pages.url("/blank")),
    ]


def test_cli_run_over_a_mixed_site(tmp_path: Path, pages: PageServer) -> None:
    config = write_config(tmp_path, _site(pages, 2))
    first = cli(config, "run", "--json")
    assert first.returncode == 1, first.stderr  # three vendors fail by design
    results = {r["vendor"]: r["status"] for r in json.loads(first.stdout)["vendors"]}
    assert [results[f"Vendor {i}"] for i in range(9)] == ["baseline"] * 9
    assert results["Down"] == results["Pdf"] == results["Blank"] == "error"
    config = write_config(tmp_path, _site(pages, 4))
    second = cli(config, "run", "--json")
    changed = {r["vendor"] for r in json.loads(second.stdout)["vendors"] if r["status"] == "changed"}
    assert changed == {f"Vendor {i}" for i in range(9) if i % 3}, second.stdout


def _same_page(tmp_path: Path, pages: PageServer, count: int) -> Config:
    """``count`` vendors serving the same page, fetched two at a time."""
    body = (ZENDESK / "v1.html").read_bytes()
    vendors = []
    for i in range(count):
        pages.serve(f"/p{i}", body)
        vendors.append((f"Vendor {i:02d}", pages.url(f"/p{i}")))
    return load_config(write_config(tmp_path, vendors, settings="concurrency = 2\nper_host = 2"))


def test_stop_ends_a_run_without_errors(tmp_path: Path, pages: PageServer) -> None:
    config = _same_page(tmp_path, pages, 40)
    stop = threading.Event()

    def on_result(r: VendorResult) -> None:
        stop.set()

    store = Store.open(config.settings.database)
    try:
        report = pipeline.run_check(config, store, stop=stop, on_result=on_result, deliver_alerts=False)
    finally:
        store.close()
    assert 1 <= len(report.results) < 40
    assert {r.status for r in report.results} == {"baseline"}


def test_an_error_while_recording_stops_the_fetching(tmp_path: Path, pages: PageServer) -> None:
    config = _same_page(tmp_path, pages, 60)

    def fail(r: VendorResult) -> None:
        raise RuntimeError("disk on fire")

    store = Store.open(config.settings.database)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            pipeline.run_check(config, store, on_result=fail, deliver_alerts=False)
    finally:
        store.close()
    # Two fetched at a time, a few more waiting their turn: the other pages are never asked for.
    fetched = [path for method, path, _ in pages.requests if method == "GET"]
    assert 1 <= len(fetched) <= 10, f"{len(fetched)} of 60 pages fetched after the error"
    # run_check returns once its fetching threads have ended, not just been told to
    assert not [t for t in threading.enumerate() if t.name.startswith("pw-fetch")]


def test_a_bug_in_one_vendor_is_that_vendors_outcome(
    pages: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages.serve("/page", (ZENDESK / "v1.html").read_bytes())
    real = collect.fetch_and_parse

    def faulty(
        fetcher: Fetcher, vendor: Vendor, state: VendorState, renderer: object = None
    ) -> collect.Fetched:
        if vendor.name == "V3":
            raise ZeroDivisionError("a bug")
        return real(fetcher, vendor, state, renderer)  # type: ignore[arg-type]

    monkeypatch.setattr(collect, "fetch_and_parse", faulty)
    vendors = [Vendor(f"V{i}", pages.url("/page"), 30) for i in range(10)]
    states = [VendorState(i, v.name, None, None, None, 0, False) for i, v in enumerate(vendors)]
    with Fetcher(FetchOptions(retries=0, per_host=4, concurrency=4)) as fetcher:
        got = {vendors[i].name: type(o).__name__ for i, o in collect.in_threads(fetcher, vendors, states, 4)}
    assert got == {**{f"V{i}": "Fetched" for i in range(10)}, "V3": "ZeroDivisionError"}


def test_outcomes_done_together_come_in_the_vendors_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the caller records one vendor, several others may finish; they are handed on in the
    vendors' order, so which vendors one failed batch undoes does not depend on a set's order."""
    n = 24
    done = threading.Semaphore(0)

    def fetch_and_parse(fetcher: object, vendor: Vendor, state: object, renderer: object) -> str:
        done.release()
        return vendor.name

    monkeypatch.setattr(collect, "fetch_and_parse", fetch_and_parse)
    vendors = load_config(
        write_config(tmp_path, [(f"V{i:02d}", f"https://v{i}.example/") for i in range(n)])
    ).vendors
    outcomes = collect.in_threads(None, vendors, [None] * n, workers=n // 2)  # type: ignore[arg-type]
    order = []
    for i, got in outcomes:
        if not order:  # hold the first outcome until every vendor in flight has finished
            for _ in range(n):
                assert done.acquire(timeout=60)
        order.append(i)
        assert got == vendors[i].name
    assert order[1:] == sorted(order[1:]), order
