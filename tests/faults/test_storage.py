"""Storage faults: a locked, corrupt, foreign, read-only or full database."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import (
    FAULTY,
    HEALTHY,
    V2,
    World,
    by_vendor,
    db_state,
    half_written,
    integrity,
    lost_rows,
    respond,
)

from policy_watch.fetch import Fetcher
from policy_watch.pipeline import fetch_options, run_check
from policy_watch.store import Store


def _checkpoint(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")


def _assert_kept(world: World, before: Any) -> None:
    after = db_state(world.db)
    lost = lost_rows(before, after) + [f"half-written {s}" for s in half_written(world.db)]
    world.record.data_lost += len(lost)
    assert not lost, lost


def test_database_locked_by_another_writer_waits(world: World) -> None:
    before = world.baseline()
    conn = sqlite3.connect(world.db, isolation_level=None, check_same_thread=False)
    conn.execute("begin immediate")
    conn.execute("insert into vendors (name, url, created_at) values ('Other Writer', 'x', 'now')")
    release = threading.Timer(1.5, lambda: conn.execute("commit"))
    release.start()
    try:
        t0 = time.monotonic()
        r = world.cli("run")
        waited = time.monotonic() - t0
    finally:
        release.join()
        conn.close()
    waited_it_out = r.code == 0 and waited >= 1.4
    clear_error = (
        r.code == 1 and "database is locked" in r.err and str(world.db) in r.err and "Traceback" not in r.err
    )
    assert waited_it_out or clear_error, f"exit {r.code} after {waited:.1f} s: {r.err}"
    assert integrity(world.db) == "ok"
    _assert_kept(world, before)
    got = by_vendor(world.run())
    assert got[FAULTY].status == got[HEALTHY].status == "unchanged", got
    _assert_kept(world, before)


def test_second_check_refused_while_one_runs(world: World) -> None:
    before = world.baseline()
    lock = world.db.with_name(world.db.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(fd, b"4242", 0)
        r = world.cli("run")
    finally:
        os.close(fd)
    assert r.code == 3, r.err  # locked: apart from vendor failures (1)
    assert "another policy-watch check is running" in r.err and str(world.db) in r.err, r.err
    _assert_kept(world, before)


@pytest.mark.parametrize("kind", ["not-a-database", "corrupt-pages", "truncated"])
def test_corrupt_database_is_never_replaced(world: World, kind: str) -> None:
    if kind == "not-a-database":
        world.db.write_bytes(b"name,url\nAcme,https://example.com\n" * 200)
    else:
        world.baseline()
        _checkpoint(world.db)
        data = bytearray(world.db.read_bytes())
        if kind == "corrupt-pages":
            for page in range(1, len(data) // 4096):
                data[page * 4096 + 100 : page * 4096 + 1000] = os.urandom(900)
        else:
            data = data[: len(data) // 2 + 123]
        world.db.write_bytes(bytes(data))
        for extra in ("-wal", "-shm"):
            Path(f"{world.db}{extra}").unlink(missing_ok=True)
    original = world.db.read_bytes()
    for args in (("run",), ("changes",), ("show", HEALTHY)):
        r = world.cli(*args)
        assert r.code != 0, f"{args}: exit 0 on a broken database"
        assert str(world.db) in r.err, f"{args}: the file is not named: {r.err}"
        assert "Traceback" not in r.err, f"{args}: crashed: {r.err}"
        assert world.db.read_bytes() == original, f"{args}: the database file was changed"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_read_only_database_folder(world: World, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if os.geteuid() == 0:
        mnt = request.getfixturevalue("tmpfs")  # root ignores permissions: a read-only mount stops it
        world.db = mnt / "pw.db"
        world.write_config()
        before = world.baseline()
        remount = ["mount", "-o", "remount,ro", str(mnt)]
        subprocess.run(remount, check=True, capture_output=True)
        undo = ["mount", "-o", "remount,rw", str(mnt)]
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        world.db = folder / "pw.db"
        world.write_config()
        before = world.baseline()
        folder.chmod(0o500)
        undo = ["chmod", "700", str(folder)]
    try:
        world.serve_faulty(respond(V2))
        r = world.cli("run")
        assert r.code != 0, r.out
        assert str(world.db) in r.err and ("read-only" in r.err.lower() or "permission" in r.err.lower()), (
            r.err
        )
        assert "Traceback" not in r.err, r.err
    finally:
        subprocess.run(undo, check=True, capture_output=True)
    _assert_kept(world, before)
    got = by_vendor(world.run())
    assert got[FAULTY].status == "changed" and got[HEALTHY].status == "unchanged", got


def test_database_folder_is_a_file(world: World, tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    world.db = tmp_path / "data" / "pw.db"
    world.write_config()
    r = world.cli("run")
    assert r.code != 0
    assert str(tmp_path / "data") in r.err and "Traceback" not in r.err, r.err
    assert (tmp_path / "data").read_text() == "not a folder"


def _fill(folder: Path, leave: int) -> Path:
    st = os.statvfs(folder)
    filler = folder / "filler"
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def test_disk_full_on_tmpfs(world: World, tmpfs: Path) -> None:
    world.db = tmpfs / "pw.db"
    world.write_config()
    before = world.baseline()
    filler = _fill(tmpfs, 8192)
    world.serve_faulty(respond(V2))  # a real change, so the run has something to write
    r = world.cli("run")
    assert r.code != 0, r.out
    assert "full" in r.err.lower() and str(world.db) in r.err and "Traceback" not in r.err, r.err
    filler.unlink()
    assert integrity(world.db) == "ok"
    _assert_kept(world, before)
    got = by_vendor(world.run())
    assert got[FAULTY].status == "changed" and got[HEALTHY].status == "unchanged", got
    assert len(db_state(world.db).changes) == len(got[FAULTY].changes) > 0


def test_disk_full_via_max_page_count(world: World) -> None:
    """Works without root: SQLite refuses to grow past max_page_count, as on a full disk."""
    before = world.baseline()
    world.serve_faulty(respond(V2))
    cfg = world.config()
    store = Store.open(cfg.settings.database)
    pages_now = store.db.execute("pragma page_count").fetchone()[0]
    store.db.execute(f"pragma max_page_count = {pages_now}")
    try:
        with Fetcher(fetch_options(cfg)) as f:
            try:
                report = run_check(cfg, store, f)
                failed = by_vendor(report)[FAULTY]
                assert failed.status == "error" and "full" in (failed.error or ""), failed
                healthy = by_vendor(report)[HEALTHY]  # "not recorded" if the full disk undid its writes too
                assert healthy.status == "unchanged" or "not recorded" in (healthy.error or ""), healthy
            except Exception as e:  # a clear store error is acceptable too
                assert "full" in str(e) and str(world.db) in str(e), repr(e)
    finally:
        store.close()
    assert integrity(world.db) == "ok"
    _assert_kept(world, before)
    got = by_vendor(world.run())
    assert got[FAULTY].status == "changed", got
    assert len(db_state(world.db).changes) == len(got[FAULTY].changes) > 0


# --- reading while a check writes; the lock file; permissions; a newer schema ---------------------

READING_COMMANDS = [
    ("show", HEALTHY),
    ("history", HEALTHY),
    ("who", "Cloudflare"),
    ("changes",),
    ("deadlines",),
    ("export",),
    ("outbox",),
]


def test_reading_commands_do_not_wait_for_a_running_check(world: World) -> None:
    """A check holds the write lock for minutes on a large run; reading commands neither wait for it
    nor write anything themselves (they used to make the views again on every open)."""
    before = world.baseline()
    with sqlite3.connect(world.db) as conn:
        schema = conn.execute("pragma schema_version").fetchone()[0]
    writer = sqlite3.connect(world.db, isolation_level=None)
    writer.execute("begin immediate")
    writer.execute("insert into vendors (name, url, created_at) values ('Other Writer', 'x', 'now')")
    try:
        for args in READING_COMMANDS:
            r = world.cli(*args, timeout=25)  # SQLite waits up to 30 s for a lock: well past this
            assert r.code == 0 and "locked" not in r.err, (
                f"{args}: exit {r.code} after {r.seconds:.1f} s: {r.err}"
            )
    finally:
        writer.execute("rollback")
        writer.close()
    with sqlite3.connect(world.db) as conn:
        assert conn.execute("pragma schema_version").fetchone()[0] == schema, (
            "a reading command changed the schema"
        )
    _assert_kept(world, before)


def test_lock_file_planted_as_a_symlink_is_refused(world: World, tmp_path: Path) -> None:
    before = world.baseline()
    victim = tmp_path / "precious.txt"
    victim.write_text("do not overwrite")
    lock = world.db.with_name(world.db.name + ".lock")
    lock.unlink(missing_ok=True)
    lock.symlink_to(victim)
    r = world.cli("run")
    assert r.code != 0 and "symbolic link" in r.err and str(lock) in r.err, r.err
    assert "Traceback" not in r.err, r.err
    assert victim.read_text() == "do not overwrite"
    _assert_kept(world, before)
    lock.unlink()
    assert world.cli("run").code == 0


def test_a_locked_run_names_the_pid_of_the_check_holding_it(world: World) -> None:
    before = world.baseline()
    second_done = threading.Event()
    # The first check is held at its page until the second has been refused, however long that
    # takes (its fetch would give up after 300 s; the page answers after 120 s at the latest).
    world.configure("timeout = 300")
    world.pages.serve("/healthy", V2, before=lambda: second_done.wait(120))
    lock = world.db.with_name(world.db.name + ".lock")
    cmd = [sys.executable, "-m", "policy_watch", "--config", str(world.config_path), "run"]
    asked = len(world.pages.requests)
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert world.pages.wait_until(lambda: len(world.pages.requests) > asked), "the first check never ran"
        assert lock.read_text() == str(first.pid)  # taken before the first page is asked for
        r = world.cli("run")
    finally:
        second_done.set()
        first.communicate(timeout=60)
    assert r.code == 3 and f"pid {first.pid}" in r.err and "another policy-watch check is running" in r.err, (
        r.err
    )
    _assert_kept(world, before)


def test_loose_permissions_are_tightened_or_warned_about(world: World, tmp_path: Path) -> None:
    before = world.baseline()
    world.db.chmod(0o644)
    tmp_path.chmod(0o777)
    try:
        r = world.cli("run")
    finally:
        tmp_path.chmod(0o700)
    assert r.code == 0, r.err
    assert stat.S_IMODE(world.db.stat().st_mode) == 0o600
    assert f"{tmp_path}: others may write to the database's folder" in r.err, r.err
    _assert_kept(world, before)


def test_folders_made_under_umask_000_are_owner_only(world: World, tmp_path: Path) -> None:
    world.db = tmp_path / "data" / "deep" / "pw.db"
    world.write_config()
    cmd = [sys.executable, "-m", "policy_watch", "--config", str(world.config_path), "run"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(0))
    assert done.returncode == 0, done.stderr
    for folder in (tmp_path / "data", tmp_path / "data" / "deep"):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, f"{folder}: {oct(folder.stat().st_mode)}"
    for f in world.db.parent.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f"{f}: {oct(f.stat().st_mode)}"


@pytest.mark.parametrize("change", ["unknown-migration", "renamed-column"])
def test_database_from_a_newer_version_is_refused(world: World, change: str) -> None:
    from policy_watch import __version__

    world.baseline()
    with sqlite3.connect(world.db) as conn:
        conn.execute("create table if not exists schema_info (key text primary key, value text)")
        conn.execute("insert or replace into schema_info values ('written_by', '9.9.0')")
        if change == "unknown-migration":
            conn.execute(
                "insert into _sqlite_migrations (migration_set, name, applied_at)"
                " values ('policy_watch', 'm099_future', '2030-01-01')"
            )
        else:
            conn.execute("alter table windows rename column deadline to due_on")
    _checkpoint(world.db)
    original = world.db.read_bytes()
    for args in (("run",), ("show", HEALTHY), ("deadlines",), ("changes",)):
        r = world.cli(*args)
        assert r.code != 0, f"{args}: accepted a newer schema: {r.out}"
        assert "Traceback" not in r.err, f"{args}: {r.err}"
        assert "policy-watch 9.9.0" in r.err and f"policy-watch {__version__}" in r.err, f"{args}: {r.err}"
        assert ("m099_future" if change == "unknown-migration" else "deadline") in r.err, r.err
        assert world.db.read_bytes() == original, f"{args}: the database was changed"
