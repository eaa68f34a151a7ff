"""Fetching in worker processes: how vendors are split, and that a check gives the same history
whether it fetches in threads or in processes."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pwtest import ZENDESK, PageServer, cli, write_config

from policy_watch import collect, pipeline
from policy_watch.config import Config, Vendor, load_config
from policy_watch.models import FetchResult, VendorResult
from policy_watch.store import Store
from policy_watch.store.records import VendorState, pack_body


def _vendors(urls: list[str]) -> list[Vendor]:
    return [Vendor(f"V{i}", url, 30) for i, url in enumerate(urls)]


def test_plan_shares_every_host_when_the_per_host_limit_allows() -> None:
    vendors = _vendors([f"https://a.example/{i}" for i in range(7)] + ["https://b.example/x"])
    shards, per_host = collect.plan(vendors, 2, per_host=4)
    assert per_host == 2  # two workers, 2 each: never more than 4 at once on a.example
    assert sorted(i for s in shards for i in s) == list(range(8))
    assert abs(len(shards[0]) - len(shards[1])) <= 1
    shards, _ = collect.plan(vendors[:2], 4, per_host=4)
    assert shards == [[0], [1]]  # no worker without vendors


def test_plan_keeps_a_host_in_one_worker_when_the_limit_cannot_be_split() -> None:
    urls = [f"https://big.example/{i}" for i in range(5)] + [f"https://s{i}.example/" for i in range(4)]
    urls.append("https://BIG.example/upper")  # same host, other case
    shards, per_host = collect.plan(_vendors(urls), 2, per_host=1)
    assert per_host == 1
    big = {i for i, u in enumerate(urls) if "big.example" in u.lower()}
    holding = [s for s in shards if big & set(s)]
    assert len(holding) == 1 and big <= set(holding[0])  # one worker, so at most 1 request at a time
    assert sorted(i for s in shards for i in s) == list(range(len(urls)))
    assert sorted(len(s) for s in shards) == [4, 6]  # the small hosts go to the other worker
    # hosts as the fetcher's per-host limit counts them: another port is another host
    shards, _ = collect.plan(_vendors(["https://p.example/1", "https://p.example:8443/2"]), 2, per_host=1)
    assert sorted(map(len, shards)) == [1, 1]


@pytest.mark.parametrize(
    ("setting", "vendors", "concurrency", "expected"),
    [
        (None, 50, 16, 0),  # too few vendors to be worth the start-up
        (0, 5000, 16, 0),
        (1, 5000, 16, 0),  # one worker would only add a hop
        (3, 1, 16, 0),  # capped by the vendors, and one is not enough
        (3, 100, 16, 3),
        (8, 100, 4, 4),  # never more processes than pages fetched at once
    ],
)
def test_worker_count(setting: int | None, vendors: int, concurrency: int, expected: int) -> None:
    assert collect.worker_count(setting, vendors, concurrency) == expected


def test_auto_uses_processes_for_many_vendors_on_several_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collect.os, "sched_getaffinity", lambda _: {0, 1, 2, 3, 4, 5, 6, 7}, raising=False)
    assert collect.worker_count(None, 1000, 16) == collect.AUTO_MAX_PROCESSES
    monkeypatch.setattr(collect.os, "sched_getaffinity", lambda _: {0}, raising=False)
    assert collect.worker_count(None, 1000, 16) == 0


def _site(pages: PageServer, version: int) -> list[tuple[str, str]]:
    """Twelve vendors: Zendesk pages, a server error, a page that is not HTML and one without a list."""
    vendors = []
    for i in range(9):
        pages.serve(f"/z{i}", (ZENDESK / f"v{version if i % 3 else 1}.html").read_bytes(), ETag=f'"z{i}-{version}"')
        vendors.append((f"Vendor {i}", pages.url(f"/z{i}")))
    pages.serve("/down", "<html>down</html>", status=503)
    pages.serve("/pdf", b"%PDF-1.4", Content_Type="application/pdf")
    pages.serve("/blank", "<html><body><p>We are updating this page.</p></body></html>")
    return [*vendors, ("Down", pages.url("/down")), ("Pdf", pages.url("/pdf")), ("Blank", pages.url("/blank"))]


def _history(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "select v.name, c.kind, c.section, c.entity, c.field, c.old, c.new from changes c"
            " join vendors v on v.id = c.vendor_id union all"
            " select vendor, 'entry', section, entity, purpose, country, extra from current_entries"
            " union all select v.name, 'fetch', f.status, f.outcome, f.bytes, null, null from fetches f"
            " join vendors v on v.id = f.vendor_id"
            " union all select v.name, 'body', b.size, b.codec, length(b.data), null, null from bodies b"
            " join snapshots s on s.body_hash = b.hash join vendors v on v.id = s.vendor_id"
            " order by 1, 2, 3, 4, 5"
        ).fetchall()


def test_processes_record_the_same_history_as_threads(tmp_path: Path, pages: PageServer) -> None:
    runs: dict[int, list[list[tuple[str, str, int]]]] = {}
    history: dict[int, list[tuple[Any, ...]]] = {}
    for processes in (0, 2):
        work = tmp_path / f"p{processes}"
        work.mkdir()
        runs[processes] = []
        for version in (2, 4):
            config = load_config(write_config(work, _site(pages, version)))
            store = Store.open(config.settings.database)
            try:
                report = pipeline.run_check(config, store, processes=processes, deliver_alerts=False)
            finally:
                store.close()
            runs[processes].append([(r.vendor, r.status, len(r.changes)) for r in report.results])
        history[processes] = _history(work / "pw.db")
    assert runs[2] == runs[0]
    statuses = {status for run in runs[0] for _, status, _ in run}
    assert {"baseline", "changed", "unchanged", "error"} <= statuses, runs[0]
    assert history[2] == history[0]
    sizes = {row[4] for row in history[0] if row[1] == "fetch" and row[3] not in ("not_modified", "error")}
    assert 0 not in sizes and len((ZENDESK / "v1.html").read_bytes()) in sizes  # sizes survive the transfer
    assert any(row[1] == "changed" and row[4] == "country" for row in history[0]), history[0]


def test_a_first_body_crosses_compressed_only() -> None:
    """A worker sends a first body compressed (a fifth of its size) and its length; a later one
    whole, since the delta against the previous body is made from it."""
    body = (ZENDESK / "v1.html").read_bytes()
    vendor = _vendors(["https://a.example/"])[0]
    state = VendorState(1, vendor.name, None, None, None, 0, False)
    result = FetchResult(url=vendor.url, final_url=vendor.url, status=200, body=body, content_type="text/html")
    first = collect.Fetched(vendor, state, result=result, packed=pack_body(body), body_hash="h")
    sent = collect.Fetched(vendor, state, *first.for_transfer())
    assert sent.result is not None and sent.result.body == b"" and sent.packed == first.packed
    assert sent.size == len(body) and len(pickle.dumps(first.for_transfer())) < len(body) / 2
    later = collect.Fetched(vendor, state, result=result, body_hash="h")
    assert collect.Fetched(vendor, state, *later.for_transfer()).result == result


def _same_page(tmp_path: Path, pages: PageServer, count: int) -> Config:
    """``count`` vendors serving the same page, fetched two at a time."""
    body = (ZENDESK / "v1.html").read_bytes()
    vendors = []
    for i in range(count):
        pages.serve(f"/p{i}", body)
        vendors.append((f"Vendor {i:02d}", pages.url(f"/p{i}")))
    return load_config(write_config(tmp_path, vendors, settings="concurrency = 2\nper_host = 2"))


def test_stop_ends_a_run_in_processes_without_errors(tmp_path: Path, pages: PageServer) -> None:
    config = _same_page(tmp_path, pages, 40)
    stop = threading.Event()
    seen: list[VendorResult] = []

    def on_result(r: VendorResult) -> None:
        seen.append(r)
        stop.set()

    store = Store.open(config.settings.database)
    try:
        report = pipeline.run_check(config, store, stop=stop, on_result=on_result, processes=2,
                                    deliver_alerts=False)  # fmt: skip
    finally:
        store.close()
    assert 1 <= len(report.results) < 40
    assert {r.status for r in report.results} == {"baseline"}


def test_cli_run_with_processes(tmp_path: Path, pages: PageServer) -> None:
    """The real command line, whose process has no other threads: workers are forked there."""
    config = write_config(tmp_path, _site(pages, 2), settings="processes = 2")
    first = cli(config, "--verbose", "run", "--json")
    assert first.returncode == 1, first.stderr  # three vendors fail by design
    assert "12 vendors fetched and parsed in 2 worker processes (fork)" in first.stderr
    results = {r["vendor"]: r["status"] for r in json.loads(first.stdout)["vendors"]}
    assert [results[f"Vendor {i}"] for i in range(9)] == ["baseline"] * 9
    assert results["Down"] == results["Pdf"] == results["Blank"] == "error"
    config = write_config(tmp_path, _site(pages, 4), settings="processes = 2")
    second = cli(config, "run", "--json")
    changed = {r["vendor"] for r in json.loads(second.stdout)["vendors"] if r["status"] == "changed"}
    assert changed == {f"Vendor {i}" for i in range(9) if i % 3}, second.stdout


def test_an_error_while_recording_stops_the_workers(tmp_path: Path, pages: PageServer) -> None:
    config = _same_page(tmp_path, pages, 60)

    def fail(r: VendorResult) -> None:
        raise RuntimeError("disk on fire")

    store = Store.open(config.settings.database)
    start = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            pipeline.run_check(config, store, on_result=fail, processes=2, deliver_alerts=False)
    finally:
        store.close()
    assert time.monotonic() - start < 10
    assert not multiprocessing.active_children()


def test_outcomes_that_cannot_cross_processes_stay_one_vendors_error() -> None:
    import httpx

    position, got = collect._loads(collect._dumps(7, httpx.StreamClosed()))  # its args do not match its constructor
    assert position == 7 and isinstance(got, RuntimeError) and str(got).startswith("StreamClosed")
    position, got = collect._loads(collect._dumps(3, ("result", None)))
    assert (position, got) == (3, ("result", None))
    position, got = collect._loads(b"\x05\x00\x00\x00not a pickle")
    assert position == 5 and isinstance(got, RuntimeError) and "could not be read" in str(got)


_EARLY_CLOSE = """
import os, signal, sys, threading, time
from pathlib import Path
from policy_watch import collect
from policy_watch.config import Vendor
from policy_watch.fetch import FetchOptions
from policy_watch.store.records import VendorState
signal.signal(signal.SIGTERM, lambda *_: None)  # as the daemon's handler: forked workers inherit it
fast, slow = sys.argv[1], sys.argv[2]
vendors = [Vendor(f"V{i}", fast if i == 0 else slow + str(i), 30) for i in range(4)]
states = [VendorState(i, v.name, None, None, None, 0, False) for i, v in enumerate(vendors)]
assert collect._start_method() == "fork"
outcomes = collect.in_processes(FetchOptions(timeout=30, retries=0, per_host=4, concurrency=4), vendors, states, 2)
next(outcomes)
start = time.monotonic()
outcomes.close()  # what run_check does when recording fails or Ctrl-C arrives
children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
print(f"{time.monotonic() - start:.2f} {len(children)}")
"""


def test_closing_early_stops_forked_workers_even_in_a_slow_fetch(pages: PageServer) -> None:
    import socket
    import subprocess
    import sys

    if not Path("/proc/self/task").exists() or "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs Linux fork and /proc")
    pages.serve("/fast", (ZENDESK / "v1.html").read_bytes())
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers: a fetch that hangs
    try:
        slow = f"http://127.0.0.1:{silent.getsockname()[1]}/slow"
        done = subprocess.run([sys.executable, "-c", _EARLY_CLOSE, pages.url("/fast"), slow],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        silent.close()
    assert done.returncode == 0, done.stderr
    seconds, children = done.stdout.split()
    assert float(seconds) < 1.5 and children == "0", done.stdout


_GROUP_SIGTERM = """
import os, signal, sys, threading
from policy_watch import collect
from policy_watch.config import Vendor
from policy_watch.fetch import FetchOptions
from policy_watch.store.records import VendorState
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())  # as the daemon does
vendors = [Vendor(f"V{i}", sys.argv[1], 30) for i in range(40)]
states = [VendorState(i, v.name, None, None, None, 0, False) for i, v in enumerate(vendors)]
assert collect._start_method() == "fork"
got = []
for i, outcome in collect.in_processes(FetchOptions(retries=0, per_host=8, concurrency=8), vendors, states, 2, stop):
    got.append(type(outcome).__name__)
    if len(got) == 1 and sys.argv[2] == "group":
        os.killpg(0, signal.SIGTERM)  # a service manager stopping the unit: the whole group
    elif len(got) == 1:  # one worker alone
        os.kill(int(open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()[0]), signal.SIGTERM)
print(" ".join(got))
"""


def test_sigterm_to_the_process_group_stops_workers_cleanly(pages: PageServer) -> None:
    """systemd stops a unit by signalling every process in it: the workers report the vendors
    they had started, start no more, and none of it is an error."""
    import subprocess
    import sys

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    pages.serve("/slow", (ZENDESK / "v1.html").read_bytes(), delay=0.3)
    group, one = (
        subprocess.run([sys.executable, "-c", _GROUP_SIGTERM, pages.url("/slow"), who], capture_output=True,
                       text=True, timeout=60, start_new_session=True)
        for who in ("group", "one")
    )  # fmt: skip
    assert group.returncode == 0, group.stderr
    kinds = group.stdout.split()
    assert set(kinds) == {"Fetched"}, group.stdout
    assert 4 < len(kinds) < 40, "the vendors in flight were reported, no new ones started"
    # SIGTERM to one worker while the run goes on: what it had not started is lost, not dropped.
    assert one.returncode == 0, one.stderr
    kinds = one.stdout.split()
    assert len(kinds) == 40 and set(kinds) == {"Fetched", "WorkerLost"}, one.stdout


_FAULTY = """
import sys
from policy_watch import collect
from policy_watch.config import Vendor
from policy_watch.fetch import FetchOptions
from policy_watch.store.records import VendorState
real = collect.fetch_and_parse
def faulty(fetcher, vendor, state, renderer=None):
    if vendor.name == "V3":
        raise ZeroDivisionError("a bug")
    if vendor.name == "V5" and sys.argv[2] == "exit":
        raise SystemExit(3)
    return real(fetcher, vendor, state, renderer)
collect.fetch_and_parse = faulty  # the forked workers inherit it
vendors = [Vendor(f"V{i}", sys.argv[1], 30) for i in range(10)]
states = [VendorState(i, v.name, None, None, None, 0, False) for i, v in enumerate(vendors)]
assert collect._start_method() == "fork"
got = collect.in_processes(FetchOptions(retries=0, per_host=4, concurrency=4), vendors, states, 2)
print(" ".join(sorted(f"{vendors[i].name}:{type(outcome).__name__}" for i, outcome in got)))
"""


def test_a_worker_thread_that_fails_loses_only_its_own_vendor(pages: PageServer) -> None:
    """An unexpected exception in one vendor's handling is that vendor's outcome; a thread that
    dies outright (SystemExit) leaves its vendor reported as lost, never silently missing."""
    import subprocess
    import sys

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    pages.serve("/page", (ZENDESK / "v1.html").read_bytes())
    outcomes = {}
    for mode in ("bug", "exit"):
        done = subprocess.run([sys.executable, "-c", _FAULTY, pages.url("/page"), mode],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        outcomes[mode] = dict(item.split(":") for item in done.stdout.split())
    fetched = {f"V{i}": "Fetched" for i in range(10)}
    assert outcomes["bug"] == {**fetched, "V3": "ZeroDivisionError"}
    assert outcomes["exit"] == {**fetched, "V3": "ZeroDivisionError", "V5": "WorkerLost"}


_EARLY_CTRL_C = """
import os, signal, sys, time
from multiprocessing.context import SpawnProcess
from policy_watch import collect
from policy_watch.config import Vendor
from policy_watch.fetch import FetchOptions
from policy_watch.store.records import VendorState
collect._start_method = lambda: "spawn"  # as with a progress bar on a terminal
interrupts = []
signal.signal(signal.SIGINT, lambda *_: interrupts.append(1))
start = SpawnProcess.start
def start_then_ctrl_c(self):
    start(self)
    os.killpg(0, signal.SIGINT)  # Ctrl-C while the worker is still importing
    time.sleep(0.05)
SpawnProcess.start = start_then_ctrl_c
vendors = [Vendor(f"V{i}", sys.argv[1], 30) for i in range(6)]
states = [VendorState(i, v.name, None, None, None, 0, False) for i, v in enumerate(vendors)]
got = collect.in_processes(FetchOptions(retries=0, per_host=4, concurrency=4), vendors, states, 2)
print(" ".join(sorted({type(outcome).__name__ for _, outcome in got})), len(interrupts))
"""


def test_a_ctrl_c_while_workers_start_reaches_only_the_parent(pages: PageServer) -> None:
    """Workers are started with SIGINT blocked: a Ctrl-C during a spawned worker's start-up
    neither kills it nor prints its traceback, and the parent still gets every Ctrl-C."""
    import subprocess
    import sys

    if not hasattr(__import__("signal"), "pthread_sigmask"):
        pytest.skip("needs POSIX signal masks")
    pages.serve("/page", (ZENDESK / "v1.html").read_bytes())
    done = subprocess.run([sys.executable, "-c", _EARLY_CTRL_C, pages.url("/page")], capture_output=True,
                          text=True, timeout=60, start_new_session=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Fetched", "2"], done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "ended early" not in done.stderr, done.stderr


def _send_all(vendors: list[Vendor], options: Any) -> tuple[collect._Sender, float, list[int]]:
    """Run a worker's threads in this process over ``vendors``; what they sent, and how long it took."""
    from policy_watch.fetch import Fetcher

    states = [VendorState(i, v.name, None, None, None, 0, False) for i, v in enumerate(vendors)]
    reader, writer = multiprocessing.Pipe(duplex=False)
    got: list[tuple[int, Any]] = []
    reading = threading.Thread(target=lambda: got.extend(collect._loads(reader.recv_bytes()) for _ in vendors))
    reading.start()
    with Fetcher(options) as fetcher:
        sender = collect._Sender(writer, fetcher, vendors, states, list(range(len(vendors))), threading.Event(), 8)
        start = time.monotonic()
        sender.run()
        elapsed = time.monotonic() - start
    reading.join(10)
    assert all(isinstance(outcome, tuple) for _, outcome in got), got  # every page fetched and parsed
    return sender, elapsed, sorted(i for i, _ in got)


def test_a_worker_adds_threads_while_its_pages_are_slow(pages: PageServer) -> None:
    """A worker starts with one thread and adds threads, up to its share, while answers are slow
    to come: 16 pages that each take 0.3 s to arrive are fetched together, not one by one."""
    from policy_watch.fetch import FetchOptions

    for i in range(16):
        pages.serve(f"/slow{i}", (ZENDESK / "v1.html").read_bytes(), delay=0.3)
    vendors = [Vendor(f"V{i}", pages.url(f"/slow{i}"), 30) for i in range(16)]
    sender, elapsed, got = _send_all(vendors, FetchOptions(retries=0, per_host=8, concurrency=8))
    assert got == list(range(16))
    assert len(sender.threads) >= 6, sender.threads
    assert elapsed < 2.0, f"{elapsed:.2f} s: one page at a time would take 4.8 s"


def test_a_worker_keeps_one_thread_while_answers_come_at_once(pages: PageServer) -> None:
    """Where pages arrive as fast as they are parsed, more threads would only pass the interpreter
    lock back and forth: the worker stays with one (a stall of the machine may double it, twice
    at most in so short a run; starting its whole share of 8 would fail this)."""
    from policy_watch.fetch import FetchOptions

    for i in range(40):
        pages.serve(f"/fast{i}", (ZENDESK / "v1.html").read_bytes())
    vendors = [Vendor(f"V{i}", pages.url(f"/fast{i}"), 30) for i in range(40)]
    sender, _, got = _send_all(vendors, FetchOptions(retries=0, per_host=8, concurrency=8))
    assert got == list(range(40))
    assert len(sender.threads) <= 4, sender.threads


@pytest.mark.parametrize(
    ("before", "after", "spare"),
    [
        ("cpu  100 0 100 800 0 0 0 0 0 0", "cpu  150 0 150 900 0 0 0 0 0 0", True),  # half idle
        ("cpu  100 0 100 800 0 0 0 0 0 0", "cpu  195 0 195 810 0 0 0 0 0 0", False),  # 5% idle
        ("cpu  100 0 100 800 0 0 0 0 0 0", "not a stat file", True),
    ],
)
def test_idle_cpu_from_proc_stat(tmp_path: Path, before: str, after: str, spare: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    stat.write_text(before + "\n")
    monkeypatch.setattr(collect.IdleCpu, "PATH", str(stat))
    monkeypatch.setattr(collect.os, "cpu_count", lambda: 2)
    idle = collect.IdleCpu()
    assert idle.spare() is False  # too soon to tell: no
    stat.write_text(after + "\n")
    idle._at -= 1
    assert idle.spare() is spare
    monkeypatch.setattr(collect.IdleCpu, "PATH", str(tmp_path / "missing"))
    assert collect.IdleCpu().spare() is True  # no /proc: as if a core were free
