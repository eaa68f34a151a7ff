"""Review page benchmark: server time of every page on a year of daily runs of 1,000 vendors.

Needs the database bench_store.py builds (keep it with --db):

    .venv/bin/python benchmarks/bench_store.py --db /tmp/pw-year.db
    .venv/bin/python benchmarks/bench_web.py --db /tmp/pw-year.db

The database is copied first (the decision form writes, and serving brings the schema up to
date). The application is the one `policy-watch serve` runs, called in-process; server time is
measured around the application (from the request to the last byte of its response), so it
leaves out the network and the client. Each page is requested --repeats times after one
untimed warm-up request; the first request of each page (templates compiled, caches empty) is
reported apart. Target: every page under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from policy_watch.config import parse_config
from policy_watch.store import Store
from policy_watch.store.part import query
from policy_watch.store.reading import open_readonly
from policy_watch.web import create_app
from policy_watch.web.security import Access

TARGET_MS = 200.0
Scope = MutableMapping[str, Any]


class Timed:
    """ASGI wrapper: the time from the request to the end of the response body."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        start = time.perf_counter()

        async def timed_send(message: MutableMapping[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_ms = (time.perf_counter() - start) * 1000

        await self.app(scope, receive, timed_send)


def pick(db: Path) -> dict[str, Any]:
    """Realistic targets: the vendor with the most snapshots, a busy window, a deep raw page."""
    store = open_readonly(db)
    try:

        def one(sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
            return query(store.db.conn, sql, params)

        vendor = one(
            "select vendor_id as id, count(*) as n from snapshots group by vendor_id order by n desc limit 1"
        )[0]
        snaps = one("select id, first_seen from snapshots where vendor_id = ? order by id", [vendor["id"]])
        name = one("select name from vendors where id = ?", [vendor["id"]])[0]["name"]
        window = one(
            "select window_id as id from changes where window_id is not null group by window_id"
            " order by count(*) desc, window_id desc limit 1"
        )[0]["id"]
        open_window = one(
            "select id from windows where status in ('open', 'acknowledged') order by deadline desc limit 1"
        )
        deep = one(
            "select s.id from snapshots s join bodies b on b.hash = s.body_hash order by b.depth desc, s.id desc limit 1"
        )
        entity = one(
            "select entity, count(*) as n from current_entries group by entity order by n desc limit 1"
        )[0]
        counts = {
            t: one(f"select count(*) as n from {t}")[0]["n"]
            for t in ("vendors", "snapshots", "changes", "windows", "fetches", "bodies")
        }
        mid = snaps[len(snaps) // 2]["first_seen"][:10]
        last_day = one("select max(last_seen) as d from snapshots")[0]["d"][:10]
    finally:
        store.close()
    return {
        "vendor": vendor["id"],
        "name": name,
        "snaps": [s["id"] for s in snaps],
        "window": window,
        "open_window": open_window[0]["id"] if open_window else window,
        "deep": deep[0]["id"],
        "entity": entity["entity"],
        "counts": counts,
        "mid": mid,
        "last_day": last_day,
    }


def pages(t: dict[str, Any]) -> list[tuple[str, str]]:
    v, s = t["vendor"], t["snaps"]
    return [
        ("dashboard", "/"),
        ("open windows, first 100", "/windows"),
        ("vendors (all 1,000)", "/vendors"),
        ("vendor page", f"/vendors/{v}"),
        ("vendor page, list as of a date", f"/vendors/{v}?at={t['mid']}"),
        ("diff, first and last snapshot", f"/vendors/{v}/diff?a={s[0]}&b={s[-1]}"),
        ("raw page, deepest delta chain", f"/snapshots/{t['deep']}/raw"),
        ("changes", "/changes"),
        ("changes, one vendor", f"/changes?vendor={t['name']}"),
        ("changes, added since a date", f"/changes?kind=added&since={t['mid']}"),
        ("changes, page 50", "/changes?page=50"),
        ("changes, with a transfer risk", "/changes?risk=any"),
        ("changes, risk to US", "/changes?to=US"),
        ("changes, risk to a country none has (all scanned)", "/changes?to=KP"),
        ("window", f"/windows/{t['window']}"),
        ("entity, most listed name", f"/entity?name={t['entity']}"),
        ("entity, an alias (AWS)", "/entity?name=AWS"),
        ("feed, all vendors", "/feed.atom"),
        ("feed, one vendor", f"/vendors/{v}/feed.atom"),
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--db", type=Path, required=True, help="a database bench_store.py built (not changed: copied)"
    )
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    if not args.db.is_file():
        raise SystemExit(f"{args.db}: no such database (build one with benchmarks/bench_store.py --db PATH)")
    with tempfile.TemporaryDirectory(prefix="pw-bench-web-") as tmp:
        db = Path(tmp) / "history.db"
        shutil.copy(args.db, db)
        config = parse_config({"settings": {"database": str(db)}}, Path(tmp) / "bench.toml")
        Store.open(db, create=False).close()  # what serve does once at start: bring the schema up to date
        targets = pick(db)
        run(config, targets, args.repeats)


def run(config: Any, targets: dict[str, Any], repeats: int) -> None:
    # Deadlines count from the simulated year's last day, when the last month's windows are open.
    last_day = date.fromisoformat(targets["last_day"])
    app = create_app(config, Access(loopback=True, os_user="bench"), today=lambda: last_day)
    t = time.perf_counter()
    app.state.pages.warm()  # what serve starts in a background thread
    warm_s = time.perf_counter() - t
    timed = Timed(app)
    print(
        f"date {date.today()} | {platform.node()} | {os.cpu_count()} cores | Python {platform.python_version()}"
    )
    print(f"database: {targets['counts']}; deadlines counted from {last_day} (the last simulated day)")
    print(f"start-up work in the background (company names, change meanings): {warm_s:.2f} s")
    print(f"repeats per page: {repeats} (after one untimed request); server time in ms\n")
    print(f"{'page':52s} {'first':>7s} {'median':>7s} {'p95':>7s} {'max':>7s}  target")
    worst = 0.0
    with TestClient(timed, base_url="http://127.0.0.1") as client:
        for label, path in pages(targets):
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            first = timed.last_ms
            times = []
            for _ in range(repeats):
                client.get(path)
                times.append(timed.last_ms)
            times.sort()
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            worst = max(worst, times[-1])
            ok = (
                "ok"
                if times[-1] < TARGET_MS
                else ("median ok" if statistics.median(times) < TARGET_MS else "MISSED")
            )
            print(
                f"{label:52s} {first:7.1f} {statistics.median(times):7.1f} {p95:7.1f} {times[-1]:7.1f}  {ok}"
            )
        page = client.get(f"/windows/{targets['open_window']}").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token, "no form token"
        writes = []
        for i in range(repeats):
            r = client.post(
                f"/windows/{targets['open_window']}",
                data={"action": "ack", "note": f"bench {i}", "csrf": token.group(1)},
                follow_redirects=False,
            )
            assert r.status_code == 303, r.text[:300]
            writes.append(timed.last_ms)
        writes.sort()
        print(
            f"{'decision (POST, one write transaction)':52s} {writes[0]:7.1f} {statistics.median(writes):7.1f} "
            f"{writes[int(0.95 * (len(writes) - 1))]:7.1f} {writes[-1]:7.1f}  "
            f"{'ok' if writes[-1] < TARGET_MS else 'MISSED'}"
        )
    worst = max(worst, writes[-1])
    print(
        f"\nslowest request after the first: {worst:.1f} ms   target < {TARGET_MS:.0f} ms: "
        f"{'ok' if worst < TARGET_MS else 'MISSED'}"
    )


if __name__ == "__main__":
    sys.exit(main())
