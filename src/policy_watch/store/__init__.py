"""SQLite history through sqlite-utils: the only package that imports sqlite_utils, and the only
place SQL is written.

``Store`` owns the connection and its transactions and exposes one small interface per concern,
all on that connection: ``vendors`` and ``runs`` (vendors.py), ``snapshots`` and ``bodies``
(snapshots.py), ``windows`` and ``changes`` (windows.py), ``outbox`` (outbox.py), ``entries``
(entries.py). ``schema`` holds the migrations and views; ``database`` opens the file and takes
the run lock; ``records`` and ``rows`` hold the values handed out; ``reading`` answers the
review page's questions.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlite_utils import Database

from policy_watch.errors import StoreError
from policy_watch.store.database import Checkpointer, open_database, run_lock
from policy_watch.store.entries import Entries
from policy_watch.store.outbox import Outbox
from policy_watch.store.records import (
    Alert,
    PageRows,
    StoredSnapshot,
    VendorState,
    content_hash,
    page_rows,
)
from policy_watch.store.rows import (
    DECISION_ACTIONS,
    ChangeLogRow,
    CurrentEntry,
    Freshness,
    OutboxRow,
    OutboxStatus,
    SnapshotMeta,
    SnapshotSummary,
    WindowRow,
    WindowStatus,
)
from policy_watch.store.schema import migrations
from policy_watch.store.snapshots import Bodies, Snapshots
from policy_watch.store.vendors import Runs, Vendors
from policy_watch.store.windows import Changes, Windows

__all__ = [
    "DECISION_ACTIONS",
    "Alert",
    "ChangeLogRow",
    "CurrentEntry",
    "Freshness",
    "OutboxRow",
    "OutboxStatus",
    "PageRows",
    "SnapshotMeta",
    "SnapshotSummary",
    "Store",
    "StoredSnapshot",
    "VendorState",
    "WindowRow",
    "WindowStatus",
    "content_hash",
    "migrations",
    "page_rows",
    "run_lock",
]


_CHECKPOINT_PAGES = 1000  # SQLite's default: the log is copied into the database every 4 MB
_BATCH_CHECKPOINT_PAGES = 10000


class Store:
    """Reads and writes the history. Writes that belong together happen in one transaction."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path
        self.vendors = Vendors(self)
        self.runs = Runs(self)
        self.snapshots = Snapshots(self)
        self.bodies = Bodies(self)
        self.windows = Windows(self)
        self.changes = Changes(self)
        self.outbox = Outbox(self)
        self.entries = Entries(self)

    @classmethod
    def open(cls, path: Path, *, create: bool = True, read_only: bool = False) -> Store:
        """``read_only``: nothing can be written through this store (see ``open_database``)."""
        return cls(open_database(path, create=create, read_only=read_only), path)

    def close(self) -> None:
        self.db.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested, a savepoint. The outermost takes the write lock up front
        (BEGIN IMMEDIATE) so it waits for another writer instead of failing on a lock upgrade.
        A savepoint is undone on any exception, Ctrl-C included: a batch that commits what was
        done never commits half a vendor. (Our own savepoints rather than sqlite-utils' atomic():
        a fixed name instead of a random one per vendor, so the SAVEPOINT and RELEASE statements
        of a run's vendors stay prepared.)"""
        conn = self.db.conn
        if conn.in_transaction:
            try:
                conn.execute("SAVEPOINT pw")  # nested ones may share the name: RELEASE takes the innermost
                try:
                    yield
                except BaseException:
                    if conn.in_transaction:  # an error may have ended the whole transaction already
                        conn.execute("ROLLBACK TO pw")
                        conn.execute("RELEASE pw")
                    raise
                conn.execute("RELEASE pw")
            except sqlite3.DatabaseError as e:
                raise StoreError(str(self.path), f"write failed: {e}") from None
            return
        self._begin()
        try:
            yield
        except sqlite3.DatabaseError as e:
            self._rollback()
            raise StoreError(str(self.path), f"write failed: {e}") from None
        except BaseException:
            self._rollback()
            raise
        self._commit()

    @contextmanager
    def batch(self, size: int = 64, seconds: float = 1.0) -> Iterator[Callable[[], bool]]:
        """Group many vendors' transactions (each then a savepoint) into fewer commits.

        Yields ``tick``: call it after each unit of work; it commits every ``size`` units or
        ``seconds`` and says whether it did. Whatever was done is committed on the way out. An
        error that ends the whole transaction (a RAISE(ROLLBACK) trigger, an I/O error) undoes
        the units since the last commit: ``in_transaction`` is then False, and the next tick
        starts a new transaction.

        Meanwhile this connection leaves the write-ahead log alone up to about 40 MB (instead of
        copying it into the database every 4 MB, with an fsync each time, between two vendors;
        benchmarks/README.md has the figures). From the first commit on, a ``Checkpointer``
        thread copies each commit's pages in the background, so that little is left to copy
        when the batch ends.
        """
        conn = self.db.conn
        count, since = 0, time.monotonic()
        # Started at the first commit: a batch that never commits needs none.
        checkpointer: Checkpointer | None = None

        def tick() -> bool:
            nonlocal count, since, checkpointer
            count += 1
            if not conn.in_transaction:  # lost to an error: the caller has been told by in_transaction
                self._begin()
                count, since = 0, time.monotonic()
                return False
            if count >= size or time.monotonic() - since > seconds:
                self._commit()
                if checkpointer is None and self.path.is_file():
                    checkpointer = Checkpointer(self.path)
                if checkpointer is not None:
                    checkpointer.poke()
                self._begin()
                count, since = 0, time.monotonic()
                return True
            return False

        self._begin()
        conn.execute(f"PRAGMA wal_autocheckpoint = {_BATCH_CHECKPOINT_PAGES}")
        try:
            yield tick
        finally:
            try:
                if conn.in_transaction:
                    self._commit()
            finally:
                if checkpointer is not None:  # after the commit: an interrupt while it stops loses nothing
                    checkpointer.stop()
                with suppress(sqlite3.Error):  # a broken connection: the error above says more
                    conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")

    @property
    def in_transaction(self) -> bool:
        return self.db.conn.in_transaction

    def _begin(self) -> None:
        try:
            self.db.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as e:
            raise StoreError(str(self.path), f"cannot start a write: {e}") from None

    def _commit(self) -> None:
        try:
            self.db.conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            self._rollback()
            raise StoreError(str(self.path), f"write failed: {e}") from None

    def _rollback(self) -> None:
        if self.db.conn.in_transaction:
            self.db.conn.execute("ROLLBACK")
