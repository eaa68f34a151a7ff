"""The daemon: catches up a missed run, survives failures, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pwtest import ZENDESK, PageServer, recent, wait_for, write_config, zendesk_page

from policy_watch import scheduler
from policy_watch.config import load_config
from policy_watch.store import Store


def test_missed_run_detection(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, [("A", "https://a.example/")], settings='run_at = "07:00"'))
    store = Store.open(config.settings.database)
    try:
        morning = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
        noon = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        assert not scheduler.missed_run(config, store, morning), "not yet time today"
        assert scheduler.missed_run(config, store, noon), "no run ever"
        store.runs.record("r1", noon - timedelta(hours=4), noon - timedelta(hours=4), 1, 0, 0)
        assert not scheduler.missed_run(config, store, noon), "today's run happened at 08:00"
        store.runs.record("r0", noon - timedelta(days=1), noon - timedelta(days=1), 1, 0, 0)
        assert not scheduler.missed_run(config, store, noon)
    finally:
        store.close()


def test_run_once_never_raises(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, [("A", "http://127.0.0.1:9/none")]))
    lines: list[str] = []
    scheduler.run_once(config, threading.Event(), lines.append)
    assert any("1 failed" in line for line in lines), lines
    (tmp_path / "pw.db").write_bytes(b"garbage" * 100)
    lines.clear()
    scheduler.run_once(config, threading.Event(), lines.append)
    assert lines and lines[0].startswith("run failed:") and "pw.db" in lines[0]


def test_daemon_catches_up_then_stops_on_sigterm(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/p", (ZENDESK / "v1.html").read_bytes())
    now = datetime.now(UTC)
    earlier = (now - timedelta(minutes=5)).strftime("%H:%M")
    if now.hour == 0 and now.minute < 6:  # the scheduled time must be earlier today
        earlier = "00:00"
    config = write_config(tmp_path, [("A", pages.url("/p"))], settings=f'run_at = "{earlier}"')
    proc = subprocess.Popen(
        [sys.executable, "-m", "policy_watch", "--config", str(config), "daemon"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert pages.wait_until(lambda: any(m == "GET" for m, _, _ in pages.requests)), "no catch-up run"
        assert wait_for(lambda: _runs(tmp_path / "pw.db") == 1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "checked 1 vendor: 0 changed, 0 failed" in out
    assert "daemon stopped" in out


def _runs(db: Path) -> int:
    import sqlite3

    try:  # read-only: never creates the file the daemon is about to make
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return int(conn.execute("select count(*) from runs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_retry_alerts_between_runs_sends_once(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/p", (ZENDESK / "v1.html").read_bytes())
    config = load_config(
        write_config(tmp_path, [("A", pages.url("/p"))], notify=[f"json://127.0.0.1:{pages.port}/hook"])
    )
    lines: list[str] = []
    scheduler.run_once(config, threading.Event(), lines.append)
    pages.serve("/p", zendesk_page("v2", recent()))
    pages.post_status = 500  # the receiver is down during the daily run
    scheduler.run_once(config, threading.Event(), lines.append)
    assert "pending 1" in lines[-1] and pages.posts == []
    pages.post_status = 200
    scheduler.retry_alerts(config, lines.append)
    assert len(pages.posts) == 1 and pages.posts[0]["title"].startswith("A: 1 added")
    assert "sent 1 delayed alert(s); 0 pending" in lines[-1]
    scheduler.retry_alerts(config, lines.append)
    assert len(pages.posts) == 1, "sent once"
