"""Opening the database file, the one-check-at-a-time lock, and copying the log in the background."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlite_utils import Database

from policy_watch.errors import LockedError, StoreError
from policy_watch.lookalike import visible
from policy_watch.store.schema import create_views, migrations

log = logging.getLogger(__name__)


def _visible(value: str | None) -> str | None:
    return visible(value) if isinstance(value, str) else value


def open_database(path: Path, *, create: bool = True) -> Database:
    """Open (and migrate) the database; owner-only permissions; a clear error if it is not one."""
    if not path.exists():
        if not create:
            raise StoreError(str(path), "database does not exist yet (run `policy-watch run` first)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        except OSError as e:
            raise StoreError(str(path), f"cannot create database: {e.strerror}") from None
    try:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        db = Database(conn)
        # A name as a reader sees it (no zero-width characters, NFKC), for `who` to search by.
        conn.create_function("visible", 1, _visible, deterministic=True)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 30000")
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL cannot corrupt the database; a power cut may lose the last commits,
        # which the next run simply re-checks. It saves an fsync per transaction.
        db.execute("PRAGMA synchronous = NORMAL")
        # Each vendor is recorded in a savepoint, whose undo log (the statement journal) outgrows
        # SQLite's 64 KiB in-memory allowance and spills to a temporary file: first snapshots of
        # 1,000 vendors wrote 142,000 pages there, 80% of all writes. In memory it is a few
        # hundred KiB at a time, freed at every savepoint's release.
        db.execute("PRAGMA temp_store = MEMORY")
        migrations.apply(db)
        create_views(db)
    except sqlite3.DatabaseError as e:
        raise StoreError(str(path), f"cannot open database: {e} (the file was left untouched)") from None
    return db


class Checkpointer:
    """Copies committed pages from the write-ahead log into the database file in a thread of its
    own, each time ``poke`` is called, while the writer goes on. Without it a long batch leaves
    the whole log (about 20 MB for a first run of 1,000 vendors) to be copied when it ends: 60 ms
    that nothing else overlaps. Best effort: a checkpoint that cannot run now is simply skipped
    (the next commit's, or the next run's, copies those pages)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wake = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="pw-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._done = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self._path), timeout=0, isolation_level=None)
        except sqlite3.Error as e:
            log.debug("background checkpoints off: %s", e)
            return
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._done:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.OperationalError as e:  # busy (another checkpoint), or a full disk
                    log.debug("background checkpoint skipped: %s", e)
        except sqlite3.Error as e:
            log.debug("background checkpoints stopped: %s", e)
        finally:
            conn.close()


_HELD_LOCKS: set[int] = set()  # descriptors of run locks this process holds


def _drop_locks_in_child() -> None:
    """A forked worker must not keep the run lock alive after its parent is gone (the lock lives
    as long as any process has the file open); the parent's own descriptor still holds it."""
    for fd in _HELD_LOCKS:
        with suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_locks_in_child)


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Only one check at a time against a database: a lock file next to it, released on exit or death."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as e:
        raise StoreError(str(lock_path), f"cannot create lock file: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise LockedError(
                str(path), f"another policy-watch check is running (pid {holder}); try later"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _HELD_LOCKS.add(fd)
        yield
    finally:
        _HELD_LOCKS.discard(fd)
        os.close(fd)
