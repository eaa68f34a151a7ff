"""Store + diff benchmark: a year of daily runs of 1,000 vendors on a real SQLite file, no HTTP.

Every page is generated and parsed before the clock starts. Each simulated run then does
what `pipeline.run_check` does after fetching, with the same functions:
  store.vendors.state() for every vendor, then record.record_vendor() per vendor (one transaction
  each), then pipeline.after_run() (reminders, expiry, digests, company names).
Unchanged vendors come in as HTTP 304 results (what nginx answers a conditional request),
changed vendors (2% a day, each an entity added or an entity's country/purpose changed) as
HTTP 200 with the full page body and its pre-parsed ParsedPage.

Usage:  .venv/bin/python benchmarks/bench_store.py [--days 365] [--vendors 1000] [--db PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pages

from policy_watch import collect, pipeline, record
from policy_watch.config import Config, Vendor, parse_config
from policy_watch.models import FetchResult, ParsedPage
from policy_watch.parse import parse_page
from policy_watch.store import Store

START = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
MB = 1024 * 1024


@dataclass
class Page:
    """One vendor's current page: content, served bytes and what the parser read from them."""

    content: _pages.VendorPage
    body: bytes
    parsed: ParsedPage
    etag: str


@dataclass
class Day:
    day: int
    changed: int
    seconds: float
    states_s: float
    record_s: float
    after_s: float
    db_bytes: int
    statuses: dict[str, int]


def make_page(content: _pages.VendorPage) -> Page:
    body = _pages.render(content).encode()
    return Page(
        content,
        body,
        parse_page(body, content_type="text/html; charset=utf-8"),
        f'"{content.index:x}-{content.revision:x}"',
    )


def make_config(db: Path, n: int) -> Config:
    vendors = [
        {"name": _pages.vendor_name(i), "url": f"https://vendor{i:04d}.example/legal/subprocessors"}
        for i in range(n)
    ]
    return parse_config({"settings": {"database": str(db)}, "vendors": vendors}, db.parent / "bench.toml")


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def checkpoint(store: Store) -> None:
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def fetched(vendor: Vendor, state: object, page: Page, changed: bool) -> object:
    """The value collect.fetch_and_parse would hand to record.record_vendor."""
    if not changed:
        result = FetchResult(
            url=vendor.url,
            final_url=vendor.url,
            status=304,
            body=b"",
            content_type="text/html; charset=utf-8",
            etag=page.etag,
            duration_ms=3,
            not_modified=True,
        )
        return collect.Fetched(vendor, state, result=result, same_body=True)  # type: ignore[arg-type]
    result = FetchResult(
        url=vendor.url,
        final_url=vendor.url,
        status=200,
        body=page.body,
        content_type="text/html; charset=utf-8",
        etag=page.etag,
        duration_ms=12,
    )
    return collect.Fetched(vendor, state, result=result, page=page.parsed)  # type: ignore[arg-type]


def one_run(config: Config, store: Store, pages: list[Page], changed: set[int], at: datetime) -> Day:
    """One simulated run; only store + diff work is inside the timed region."""
    run = record.Run(config, store, run_id=f"bench-{at:%Y%m%d}", now=lambda: at)
    t0 = time.perf_counter()
    states = [store.vendors.state(v.name, v.url, at) for v in config.vendors]
    t1 = time.perf_counter()
    statuses: dict[str, int] = {}
    for i, (v, state) in enumerate(zip(config.vendors, states, strict=True)):
        got = fetched(v, state, pages[i], i in changed)
        r = record.record_vendor(run, v, got, at)  # type: ignore[arg-type]
        statuses[r.status] = statuses.get(r.status, 0) + 1
    t2 = time.perf_counter()
    pipeline.after_run(run, at)
    t3 = time.perf_counter()
    return Day(0, len(changed), t3 - t0, t1 - t0, t2 - t1, t3 - t2, db_bytes(store.path), statuses)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--vendors", type=int, default=1000)
    ap.add_argument("--change", type=float, default=0.02, help="share of vendors whose page changes each day")
    ap.add_argument("--db", type=Path, help="database file (default: a new one in a temp dir, removed after)")
    ap.add_argument(
        "--budget-minutes",
        type=float,
        default=10.0,
        help="stop simulating after this long and extrapolate the rest of the year",
    )
    ap.add_argument("--every", type=int, default=30, help="print a progress line every N days")
    ap.add_argument(
        "--synchronous",
        choices=("FULL", "NORMAL"),
        help="what-if: set PRAGMA synchronous on the store's connection (the shipped default is FULL)",
    )
    ap.add_argument(
        "--profile", action="store_true", help="cProfile the daily runs and print the top functions"
    )
    args = ap.parse_args(argv)

    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="pw-bench-store-")
        args.db = Path(tmp.name) / "history.db"
    if args.db.exists():
        raise SystemExit(f"{args.db} exists; give a new path")
    n, rng = args.vendors, random.Random("bench-store")
    t = time.perf_counter()
    config = make_config(args.db, n)
    pages = [make_page(_pages.make_vendor(i)) for i in range(n)]
    print(
        f"{n} vendors, {sum(len(p.parsed.entries) for p in pages)} entries, pages generated and parsed in "
        f"{time.perf_counter() - t:.1f} s; database {args.db}",
        flush=True,
    )
    store = Store.open(args.db)
    if args.synchronous:
        store.db.execute(f"PRAGMA synchronous = {args.synchronous}")
        print(f"WHAT-IF: PRAGMA synchronous = {args.synchronous} (not what policy-watch ships)")
    profiler = cProfile.Profile() if args.profile else None
    try:
        report(args, config, store, pages, rng, profiler)
    finally:
        store.close()
        if tmp is not None:
            tmp.cleanup()


def unchanged_growth(config: Config, store: Store, pages: list[Page], at: datetime) -> tuple[int, Day]:
    checkpoint(store)
    before = store.path.stat().st_size
    day = one_run(config, store, pages, set(), at)
    checkpoint(store)
    return store.path.stat().st_size - before, day


def print_table_sizes(store: Store, total: int) -> None:
    """Where the bytes are: tables and indexes, from SQLite's dbstat."""
    try:
        rows = store.db.execute(
            "select name, sum(pgsize) from dbstat group by name order by 2 desc"
        ).fetchall()
    except Exception as e:  # dbstat is a compile-time option of SQLite
        print(f"(no per-table sizes: {e})")
        return
    print(
        "  by table/index: "
        + ", ".join(f"{name} {size / MB:.1f} MB ({size / total:.0%})" for name, size in rows[:8])
    )


def report(
    args: argparse.Namespace,
    config: Config,
    store: Store,
    pages: list[Page],
    rng: random.Random,
    profiler: cProfile.Profile | None,
) -> None:
    n = len(pages)
    per_day = max(1, round(args.change * n))
    baseline = one_run(config, store, pages, set(range(n)), START)
    print(
        f"day 0 (first snapshots of all {n}): {baseline.seconds:.2f} s, statuses {baseline.statuses}, "
        f"db {baseline.db_bytes / MB:.1f} MB",
        flush=True,
    )
    grow_first, unchanged_first = unchanged_growth(config, store, pages, START + timedelta(hours=12))
    size_start = store.path.stat().st_size  # checkpointed, before the daily runs
    print(
        f"unchanged run after day 0: {unchanged_first.seconds:.3f} s, file growth {grow_first / 1024:.0f} KiB",
        flush=True,
    )

    days: list[Day] = []
    prep_s = 0.0
    started = time.perf_counter()
    stopped_early = False
    for d in range(1, args.days + 1):
        if time.perf_counter() - started > args.budget_minutes * 60:
            stopped_early = True
            break
        t = time.perf_counter()
        changed = set(rng.sample(range(n), per_day))
        for i in changed:
            pages[i] = make_page(_pages.mutate(pages[i].content, rng, (START + timedelta(days=d)).date()))
        prep_s += time.perf_counter() - t
        if profiler:
            profiler.enable()
        day = one_run(config, store, pages, changed, START + timedelta(days=d))
        if profiler:
            profiler.disable()
        day.day = d
        days.append(day)
        if d % args.every == 0 or d <= 2:
            print(
                f"day {d:3d}: {day.seconds:.3f} s (states {day.states_s:.3f}, record {day.record_s:.3f}, "
                f"after_run {day.after_s:.3f}), statuses {day.statuses}, db+wal {day.db_bytes / MB:.1f} MB",
                flush=True,
            )

    at_end = START + timedelta(days=len(days), hours=12)
    grow_last, unchanged_last = unchanged_growth(config, store, pages, at_end)
    checkpoint(store)
    size = store.path.stat().st_size
    counts = {
        t: store.db.execute(f"select count(*) from {t}").fetchone()[0]
        for t in ("snapshots", "entries", "bodies", "fetches", "changes", "windows", "outbox")
    }
    secs = [d.seconds for d in days]
    simulated = len(days)
    print()
    print(
        f"date {date.today()} | {platform.node()} | {os.cpu_count()} cores | Python {platform.python_version()}"
        f" | SQLite {store.db.execute('select sqlite_version()').fetchone()[0]}"
    )
    print(
        f"{n} vendors, {per_day} changed pages a day, {simulated} daily runs simulated"
        f"{' (stopped by --budget-minutes)' if stopped_early else ''}; page preparation (untimed) {prep_s:.1f} s"
    )
    print(f"rows: {counts}")
    print()
    print(
        f"store+diff time per daily run ({simulated} runs): mean {statistics.mean(secs):.3f} s, "
        f"median {statistics.median(secs):.3f} s, p95 {sorted(secs)[int(0.95 * (simulated - 1))]:.3f} s, "
        f"max {max(secs):.3f} s (day {days[secs.index(max(secs))].day})   target < 1 s: "
        f"{'ok' if max(secs) < 1 else 'mean ok, max MISSED' if statistics.mean(secs) < 1 else 'MISSED'}"
    )
    first_q = statistics.mean(secs[: max(1, simulated // 10)])
    last_q = statistics.mean(secs[-max(1, simulated // 10) :])
    print(
        f"  first 10% of days mean {first_q:.3f} s, last 10% mean {last_q:.3f} s; "
        f"split (mean): vendors.state {statistics.mean(d.states_s for d in days):.3f} s, "
        f"record_vendor {statistics.mean(d.record_s for d in days):.3f} s, "
        f"after_run {statistics.mean(d.after_s for d in days):.3f} s"
    )
    print(f"  first snapshots of all vendors (day 0): {baseline.seconds:.2f} s")
    print(
        f"growth per unchanged run ({n} vendors, after checkpoint): {grow_first / 1024:.0f} KiB after day 0, "
        f"{grow_last / 1024:.0f} KiB after day {simulated} ({unchanged_last.seconds:.3f} s)   target < 1 MB: "
        f"{'ok' if max(grow_first, grow_last) < MB else 'MISSED'}"
    )
    growth = (size - size_start - grow_last) / simulated if simulated else 0
    print(
        f"database size after {simulated} days: {size / MB:.1f} MB (checkpointed; {size_start / MB:.1f} MB after day 0)"
    )
    if simulated < 365:
        year = size + growth * (365 - simulated)
        print(
            f"  EXTRAPOLATED to 365 days (linear, {growth / 1024:.0f} KiB/day measured): {year / MB:.1f} MB"
            f"   target < 50 MB: {'ok' if year < 50 * MB else 'MISSED'}"
        )
    else:
        print(
            f"  target < 50 MB: {'ok' if size < 50 * MB else 'MISSED'}  ({growth / 1024:.0f} KiB/day on average)"
        )
    print_table_sizes(store, size)
    if profiler:
        print("\ncProfile of the daily runs (top 25 by cumulative time):")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
