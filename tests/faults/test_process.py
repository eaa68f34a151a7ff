"""The process killed (SIGKILL) at random points of real `policy-watch run`s, twenty times over."""

from __future__ import annotations

import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from faultkit import CaseRecord, RawServer, db_state, half_written, integrity, lost_rows, respond

from policy_watch.store import Store

VENDORS = 4
KILLS = 20
PAGE_SECONDS = 0.2  # each page answers after this long: VENDORS * PAGE_SECONDS = 0.8 s a run
BASE = [(f"Steady Subprocessor {i:02d} Ltd", f"Purpose {i}", "IE") for i in range(40)]


def _page(epoch: int, vendor: int) -> bytes:
    rows = BASE + [(f"Epoch {epoch} Vendor {vendor} Entity {k}", "Support", "US") for k in range(3)]
    body = "".join(f"<tr><td>{e}</td><td>{p}</td><td>{c}</td></tr>" for e, p, c in rows)
    return (
        f"<html><head><title>Subprocessors</title></head><body><h2>Subprocessors</h2><table><tr>"
        f"<th>Entity Name</th><th>Purpose</th><th>Country</th></tr>{body}</table></body></html>"
    ).encode()


def test_sigkill_twenty_times(tmp_path: Path, pages: Any, record: CaseRecord) -> None:
    epoch = {"n": 0}
    asked = threading.Condition()  # notified as each page is asked for
    count = {"asked": 0}

    def slow(conn: socket.socket, path: str) -> None:
        with asked:
            count["asked"] += 1
            asked.notify_all()
        time.sleep(PAGE_SECONDS)
        respond(_page(epoch["n"], int(path.rsplit("/", 1)[-1])))(conn, path)

    server = RawServer(slow)
    db = tmp_path / "pw.db"
    config = tmp_path / "config.toml"
    lines = [
        "[settings]",
        f'database = "{db}"',
        "retries = 0",
        "timeout = 30",
        "alert_retry_minutes = 0",
        "per_host = 1",
        "",
    ]
    for i in range(VENDORS):
        lines += ["[[vendors]]", f'name = "Vendor {i}"', f'url = "{server.url(f"/v/{i}")}"', ""]
    lines += [
        "[[notify]]",
        'name = "hook"',
        f'url = "{pages.url("/hook").replace("http://", "json://")}"',
        "",
    ]
    config.write_text("\n".join(lines))
    cmd = [sys.executable, "-m", "policy_watch", "--config", str(config), "run"]
    rng = random.Random(20240607)
    mid_run = 0
    try:
        previous = None
        for kill in range(KILLS):
            epoch["n"] = kill
            before = count["asked"]
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Timed from the run's first request, not from the start of the interpreter: the
            # pages alone take VENDORS * PAGE_SECONDS from then (one at a time), so every other
            # kill lands mid-run however slow the machine; the others land anywhere, the end of
            # the run and after it included.
            with asked:
                started = asked.wait_for(lambda n=before: count["asked"] > n, timeout=60)
            early = kill % 2 == 0
            time.sleep(rng.uniform(0, 0.5) if early else rng.uniform(0.5, 1.5))
            mid_run += p.poll() is None
            p.send_signal(signal.SIGKILL)
            p.wait()
            assert started, f"kill {kill}: the run never asked for a page"
            if not db.exists():
                continue
            assert integrity(db) == "ok", f"kill {kill}: integrity check failed"
            Store.open(db).close()  # opens and migrates
            half = half_written(db)
            state = db_state(db)
            lost: list[str] = lost_rows(previous, state) if previous is not None else []
            record.data_lost += len(half) + len(lost)
            assert not half, f"kill {kill}: half-written snapshots {half}"
            assert not lost, f"kill {kill}: lost {lost}"
            previous = state
        assert mid_run >= KILLS // 2, f"only {mid_run} of {KILLS} kills landed mid-run"

        epoch["n"] = KILLS
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert integrity(db) == "ok"
        assert not half_written(db)
        with sqlite3.connect(db) as conn:
            stuck = conn.execute(
                "select id, status, last_error from outbox where status not in ('sent', 'merged')"
            ).fetchall()
            sent = conn.execute("select count(*) from outbox where status = 'sent'").fetchone()[0]
            latest = conn.execute(
                "select count(*) from current_entries where entity like ?", [f"Epoch {KILLS} %"]
            ).fetchone()[0]
            dup = conn.execute(
                "select count(*) from (select vendor_id, content_hash from snapshots"
                " group by vendor_id, content_hash having count(*) > 1)"
            ).fetchone()[0]
        assert not stuck, f"alerts not delivered after the clean run: {stuck}"
        assert len(pages.posts) >= sent, f"{sent} alerts marked sent, {len(pages.posts)} received"
        assert latest == 3 * VENDORS, "the clean run did not store the current pages"
        assert dup == 0, "a page was stored twice"
        if previous is not None:
            lost = lost_rows(previous, db_state(db))
            record.data_lost += len(lost)
            assert not lost, lost
    finally:
        server.close()
