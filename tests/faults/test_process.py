"""The process killed (SIGKILL) at random points of real `policy-watch run`s, twenty times over."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from faultkit import CaseRecord, RawServer, db_state, half_written, integrity, lost_rows, respond

from policy_watch.store import Store

VENDORS = 4
KILLS = 20
BASE = [(f"Steady Subprocessor {i:02d} Ltd", f"Purpose {i}", "IE") for i in range(40)]


def _page(epoch: int, vendor: int) -> bytes:
    rows = BASE + [(f"Epoch {epoch} Vendor {vendor} Entity {k}", "Support", "US") for k in range(3)]
    body = "".join(f"<tr><td>{e}</td><td>{p}</td><td>{c}</td></tr>" for e, p, c in rows)
    return (f"<html><head><title>Subprocessors</title></head><body><h2>Subprocessors</h2><table><tr>"
            f"<th>Entity Name</th><th>Purpose</th><th>Country</th></tr>{body}</table></body></html>").encode()  # fmt: skip


def test_sigkill_twenty_times(tmp_path: Path, pages: Any, record: CaseRecord) -> None:
    epoch = {"n": 0}

    def slow(conn: socket.socket, path: str) -> None:
        time.sleep(0.12)
        respond(_page(epoch["n"], int(path.rsplit("/", 1)[-1])))(conn, path)

    server = RawServer(slow)
    db = tmp_path / "pw.db"
    config = tmp_path / "config.toml"
    lines = ["[settings]", f'database = "{db}"', "retries = 0", "timeout = 5", "alert_retry_minutes = 0",
             "per_host = 1", ""]  # fmt: skip
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
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.2, 1.3))
            mid_run += p.poll() is None
            p.send_signal(signal.SIGKILL)
            p.wait()
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
            stuck = conn.execute("select id, status, last_error from outbox where status not in ('sent', 'merged')"
                                 ).fetchall()  # fmt: skip
            sent = conn.execute("select count(*) from outbox where status = 'sent'").fetchone()[0]
            latest = conn.execute("select count(*) from current_entries where entity like ?",
                                  [f"Epoch {KILLS} %"]).fetchone()[0]  # fmt: skip
            dup = conn.execute("select count(*) from (select vendor_id, content_hash from snapshots"
                               " group by vendor_id, content_hash having count(*) > 1)").fetchone()[0]  # fmt: skip
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


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_worker_process_killed_mid_run(tmp_path: Path, pages: Any, record: CaseRecord) -> None:
    """A fetch worker dies (the OOM killer, say): its vendors are errors, checked again next run;
    the other worker's vendors are recorded; nothing stored is lost and nothing is reported removed."""
    if not Path("/proc/self/task").exists():
        pytest.skip("needs Linux /proc to find the worker processes")
    epoch = {"n": 0}
    vendors = 8

    def slow(conn: socket.socket, path: str) -> None:
        time.sleep(0.25 if epoch["n"] else 0)
        respond(_page(epoch["n"], int(path.rsplit("/", 1)[-1])))(conn, path)

    server = RawServer(slow)
    db = tmp_path / "pw.db"
    config = tmp_path / "config.toml"
    lines = ["[settings]", f'database = "{db}"', "retries = 0", "timeout = 5", "alert_retry_minutes = 0",
             "processes = 2", "per_host = 2", "concurrency = 2", ""]  # fmt: skip
    for i in range(vendors):
        lines += ["[[vendors]]", f'name = "Vendor {i}"', f'url = "{server.url(f"/v/{i}")}"', ""]
    lines += ["[[notify]]", 'name = "hook"', f'url = "{pages.url("/hook").replace("http://", "json://")}"', ""]
    config.write_text("\n".join(lines))
    cmd = [sys.executable, "-m", "policy_watch", "--config", str(config), "run"]
    try:
        first = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert f"{vendors} baseline" in first.stdout, first.stdout
        before = db_state(db)

        epoch["n"] = 1  # every page changes: 3 entities replaced on each
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while len(_children(p.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        workers = _children(p.pid)
        assert len(workers) == 2, f"expected 2 worker processes, found {workers}"
        time.sleep(0.3)  # each worker has recorded about one vendor
        os.kill(workers[0], signal.SIGKILL)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 1, (out, err)
        assert "worker process ended early" in err, err
        assert "Traceback" not in err and "internal error" not in err, err  # each vendor's own error line
        counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (changed|error)", out)}
        assert counts.get("error") and counts.get("changed"), out  # some vendors lost, the others recorded
        after = db_state(db)
        lost = lost_rows(before, after)
        record.data_lost += len(lost) + len(half_written(db))
        assert not lost and not half_written(db) and integrity(db) == "ok"
        with sqlite3.connect(db) as conn:
            removed_all = conn.execute("select count(*) from snapshots where entry_count = 0").fetchone()[0]
            failures = conn.execute("select max(consecutive_failures) from vendors").fetchone()[0]
        assert removed_all == 0, "a lost worker's vendor was stored without entities"
        assert failures == 0, "a lost worker counted as the vendor's failure"
        alerts_after_kill = len(pages.posts)
        record.false_alerts += sum("removed" in str(post).lower() and "Steady" in str(post) for post in pages.posts)

        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)  # the next run catches up
        assert done.returncode == 0, done.stderr
        with sqlite3.connect(db) as conn:
            current = conn.execute("select count(*) from current_entries where entity like 'Epoch 1 %'").fetchone()[0]
        assert current == 3 * vendors, "the next run did not record the vendors the lost worker had"
        assert len(pages.posts) >= alerts_after_kill
        assert record.false_alerts == 0
    finally:
        server.close()
