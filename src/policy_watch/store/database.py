"""Opening the database file, the one-check-at-a-time lock, and copying the log in the background."""

from __future__ import annotations

import errno
import fcntl
import functools
import logging
import os
import sqlite3
import stat
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlite_utils import Database

from policy_watch import __version__
from policy_watch.errors import LockedError, StoreError
from policy_watch.store.schema import create_views, migrations, views_current

log = logging.getLogger(__name__)


def open_database(path: Path, *, create: bool = True, read_only: bool = False) -> Database:
    """Open (and migrate) the database; owner-only permissions; a clear error if it is not one.

    ``read_only`` opens it so that nothing can be written (SQLite's ``mode=ro``): a command that
    only reads then never waits for a running check's write lock. A database an older version
    wrote is upgraded first (the one write such a command makes, once). A database a newer
    version wrote (a migration this version does not know, a column it does not find) is
    refused before anything is written."""
    if not path.exists():
        if not create:
            raise StoreError(str(path), "database does not exist yet (run `policy-watch run` first)")
        try:
            _make_folder(path.parent)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
            os.close(fd)
        except OSError as e:
            raise StoreError(str(path), f"cannot create database: {e.strerror}") from None
    _check_permissions(path)
    if read_only:
        db = _connect(path, read_only=True)
        try:
            if _needs_upgrade(db, path):
                db.conn.close()
                _connect(path, read_only=False).conn.close()  # upgrade once, then read only
                db = _connect(path, read_only=True)
                _needs_upgrade(db, path)
        except BaseException:
            db.conn.close()
            raise
        return db
    return _connect(path, read_only=False)


def connect_read_only(path: Path) -> Database:
    """A read-only connection with no upgrade step (for many short reads, as the review page makes:
    whoever serves it brings the schema up to date once at start)."""
    if not path.is_file():
        raise StoreError(str(path), "database does not exist yet (run `policy-watch run` first)")
    return _connect(path, read_only=True)


def _connect(path: Path, *, read_only: bool) -> Database:
    try:
        if read_only:
            uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
        else:
            conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise StoreError(str(path), f"cannot open database: {e} (the file was left untouched)") from None
    try:
        db = Database(conn)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 30000")
        # Each vendor is recorded in a savepoint, whose undo log (the statement journal) outgrows
        # SQLite's 64 KiB in-memory allowance and spills to a temporary file: first snapshots of
        # 1,000 vendors wrote 142,000 pages there, 80% of all writes. In memory it is a few
        # hundred KiB at a time, freed at every savepoint's release.
        db.execute("PRAGMA temp_store = MEMORY")
        if read_only:
            db.execute("PRAGMA query_only = ON")
            _check_schema(db, path)
            return db
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL cannot corrupt the database; a power cut may lose the last commits,
        # which the next run simply re-checks. It saves an fsync per transaction.
        db.execute("PRAGMA synchronous = NORMAL")
        _check_schema(db, path)
        if migrations.pending(db):
            migrations.apply(db)
            db.execute(
                "insert or replace into schema_info (key, value) values ('written_by', ?)", [__version__]
            )
        _check_columns(db, path)
        create_views(db)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise StoreError(str(path), f"cannot open database: {e} (the file was left untouched)") from None
    except BaseException:
        conn.close()
        raise
    return db


def _needs_upgrade(db: Database, path: Path) -> bool:
    """Whether a database opened read-only lacks migrations or views this version has."""
    try:
        if migrations.pending(db) or not views_current(db):
            return True
        _check_columns(db, path)
    except sqlite3.DatabaseError as e:
        raise StoreError(str(path), f"cannot open database: {e} (the file was left untouched)") from None
    return False


def _newer(db: Database, path: Path, what: str) -> StoreError:
    known = [m.name for m in migrations._migrations]
    row = None
    with suppress(sqlite3.Error):
        row = db.conn.execute("select value from schema_info where key = 'written_by'").fetchone()
    writer = f"policy-watch {row[0]}" if row else "another version of policy-watch"
    return StoreError(
        str(path),
        f"this database was written by {writer}, and this is policy-watch {__version__}, which knows its "
        f"schema up to {known[-1]}: {what}. Nothing was changed; use that version (or a newer one) with it",
    )


def _check_schema(db: Database, path: Path) -> None:
    """Refuse a database with migrations this version does not know (written by a newer one)."""
    known = {m.name for m in migrations._migrations}
    unknown = [m.name for m in migrations.applied(db) if m.name not in known]
    if unknown:
        raise _newer(db, path, f"unknown migration {', '.join(unknown)}")


@functools.cache
def _expected_columns() -> dict[str, frozenset[str]]:
    """Every table's columns as this version's migrations make them (built in memory, once)."""
    mem = Database(memory=True)
    migrations.apply(mem)
    out = {t.name: frozenset(t.columns_dict) for t in mem.tables if not t.name.startswith("_")}
    mem.conn.close()
    return out


def _check_columns(db: Database, path: Path) -> None:
    """Refuse a database whose tables lack a column this version uses (renamed or dropped elsewhere)."""
    for table, wanted in _expected_columns().items():
        have = {r[1] for r in db.conn.execute(f"PRAGMA table_info({table})").fetchall()}
        missing = sorted(wanted - have)
        if missing:
            what = (
                f"table {table} is missing"
                if not have
                else f"table {table} has no column {', '.join(missing)}"
            )
            raise _newer(db, path, what)


def _make_folder(folder: Path) -> None:
    """Create the database's folder and any missing parent owner-only (0700), whatever the umask:
    ``Path.mkdir(parents=True)`` gives parents the umask's default mode (world-writable under 000)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:  # made meanwhile by another process: left as it is
            continue
        os.chmod(d, 0o700)


def _check_permissions(path: Path) -> None:
    """Owner-only database files: an existing one that others may read is tightened to 0600; a
    folder others may write to (they could replace the database) is warned about."""
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = os.lstat(f)
        except FileNotFoundError:
            continue
        except OSError:
            return
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            try:
                os.chmod(f, 0o600)
                log.warning(
                    "%s: permissions were %s, now owner-only (0600)", f, oct(stat.S_IMODE(st.st_mode))
                )
            except OSError as e:
                log.warning(
                    "%s: others may read this file (%s) and it cannot be changed: %s",
                    f,
                    oct(stat.S_IMODE(st.st_mode)),
                    e.strerror,
                )
    with suppress(OSError):
        mode = os.stat(path.parent).st_mode
        if mode & 0o022 and not mode & stat.S_ISVTX:
            log.warning(
                "%s: others may write to the database's folder (%s); make it owner-only (chmod 700)",
                path.parent,
                oct(stat.S_IMODE(mode)),
            )


class Checkpointer:
    """Copies committed pages from the write-ahead log into the database file in a thread of its
    own, each time ``poke`` is called, while the writer goes on. Without it a long batch leaves
    the whole log to be copied when it ends, a wait that nothing else overlaps. Best effort: a checkpoint that cannot run now is simply skipped
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


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Only one check at a time against a database: a lock file next to it, released on exit or
    death, holding the pid of the process that has it. The file is never followed through a
    symbolic link nor shared through a hard link: it is truncated and written to."""
    lock_path = path.with_name(path.name + ".lock")
    fd = _open_lock(lock_path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            who = f"pid {holder}" if holder.isdigit() else "another process"
            raise LockedError(
                str(path), f"another policy-watch check is running ({who} holds {lock_path}); try later"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def _open_lock(lock_path: Path) -> int:
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        _make_folder(lock_path.parent)
        try:
            fd = os.open(lock_path, flags | os.O_CREAT | os.O_EXCL, 0o600)  # a new file, ours alone
        except FileExistsError:
            fd = os.open(lock_path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(
                str(lock_path),
                "the lock file is a symbolic link; refusing to follow it "
                "(remove it if nothing else needs it)",
            ) from None
        raise StoreError(str(lock_path), f"cannot create lock file: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        what = "is not a regular file" if not stat.S_ISREG(st.st_mode) else "has other hard links"
        raise StoreError(str(lock_path), f"the lock file {what}; refusing to use it (remove it)")
    return fd
