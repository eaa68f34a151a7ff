"""SQLite history through sqlite-utils: the only package that imports sqlite_utils.

``Store`` reads and writes; ``schema`` holds the migrations and views; ``database`` opens the
file and takes the run lock; ``records`` holds the values handed out and how content is keyed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from policy_watch.errors import NotFoundError, StoreError
from policy_watch.models import Change, Decision, ObjectionWindow, ParsedPage
from policy_watch.store.database import Checkpointer, open_database, run_lock
from policy_watch.store.records import (
    MAX_DELTA_DEPTH,
    Alert,
    PageRows,
    StoredSnapshot,
    VendorState,
    body_hash,
    columns_json,
    content_hash,
    entry_from_row,
    iso_date,
    pack_body,
    pack_delta,
    page_rows,
    unpack,
)
from policy_watch.store.schema import INSERT_ROW, ROW_KEY_BYTES, migrations

__all__ = [
    "Alert",
    "PageRows",
    "Store",
    "StoredSnapshot",
    "VendorState",
    "content_hash",
    "migrations",
    "page_rows",
    "run_lock",
]


# A snapshot's rows go in with two statements whatever their number: the cells travel as one JSON
# array and the 16-byte row keys as one blob, which SQLite slices itself. Each statement a Python
# thread runs gives up the interpreter lock while SQLite works and must win it back from the fetch
# threads; one statement per row made recording the slowest stage of a first run.
_ROWS_SQL = (
    "insert or ignore into rows (hash, section, entity, purpose, country, extra)"
    f" select substr(:keys, {ROW_KEY_BYTES} * j.key + 1, {ROW_KEY_BYTES}), json_extract(j.value, '$[0]'),"
    " json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'), json_extract(j.value, '$[3]'),"
    " json_extract(j.value, '$[4]') from json_each(:cells) j"
)
_LINKS_SQL = (
    "insert into snapshot_rows (snapshot_id, position, row_id) select :snapshot, j.key, r.id"
    f" from json_each(:cells) j join rows r on r.hash = substr(:keys, {ROW_KEY_BYTES} * j.key + 1, {ROW_KEY_BYTES})"
)


def _insert_rows(conn: sqlite3.Connection, snapshot_id: int, rows: PageRows) -> None:
    """Point a snapshot at its rows; a row already stored for any snapshot is stored once."""
    text = json.dumps(rows.cells, ensure_ascii=False)
    args = {"keys": b"".join(rows.keys), "cells": text, "snapshot": snapshot_id}
    if "\\u0000" in text:  # a NUL, which json_extract cuts the text at (SQLite 3.40)
        conn.executemany(
            INSERT_ROW, [(key, *cells) for key, cells in zip(rows.keys, rows.cells, strict=True)]
        )
    else:
        conn.execute(_ROWS_SQL, args)
    conn.execute(_LINKS_SQL, args)


DECISION_ACTIONS = ("acknowledged", "objected", "accepted")


def _decision(r: dict[str, Any]) -> Decision:
    return Decision(
        id=r["id"],
        window_id=r["window_id"],
        action=r["action"],
        by=r["by"],
        note=r["note"],
        at=datetime.fromisoformat(r["at"]),
    )


_CHECKPOINT_PAGES = 1000  # SQLite's default: the log is copied into the database every 4 MB
_BATCH_CHECKPOINT_PAGES = 10000


class Store:
    """Reads and writes the history. Writes that belong together happen in one transaction."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path

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

    # --- vendors and fetches ---------------------------------------------------------------------

    def vendor_state(self, name: str, url: str, now: datetime) -> VendorState:
        return self.vendor_states([(name, url)], now)[name]

    def vendor_states(self, vendors: Sequence[tuple[str, str]], now: datetime) -> dict[str, VendorState]:
        """Each vendor's stored state (created when new), read in one query. A vendor whose URL changed
        in the config starts without conditional-request headers."""
        with self.transaction():
            rows = self._vendor_rows([name for name, _ in vendors])
            changed = False
            for name, url in vendors:
                row = rows.get(name)
                if row is not None and row["url"] == url:
                    continue
                changed = True
                if row is None:
                    self.db.conn.execute(
                        "insert into vendors (name, url, created_at, consecutive_failures, failing) values (?, ?, ?, 0, 0)",
                        [name, url, now.isoformat()],
                    )
                else:
                    # earlier fetches went to the old URL: write it out before the vendor's URL changes
                    self.db.execute(
                        "update fetches set url = ? where vendor_id = ? and url is null",
                        [row["url"], row["id"]],
                    )
                    self.db.execute(
                        "update vendors set url = ?, etag = null, last_modified_header = null where id = ?",
                        [url, row["id"]],
                    )
            if changed:  # read again: new ids, cleared validators
                rows = self._vendor_rows([name for name, _ in vendors])
        return {
            name: VendorState(
                id=r["id"],
                name=name,
                etag=r["etag"],
                last_modified_header=r["last_modified_header"],
                body_hash=r["body_hash"],
                consecutive_failures=r["consecutive_failures"] or 0,
                failing=bool(r["failing"]),
                latest_id=r["latest_id"],
                latest_status=r["latest_status"],
                latest_entries=r["latest_entries"] or 0,
                reading_config=r["reading_config"],
            )
            for name, _ in vendors
            for r in (rows[name],)
        }

    def _vendor_rows(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Vendors by name, each with its latest snapshot's id, status and size (500 names a query)."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(names), 500):
            chunk = list(names[start : start + 500])
            marks = ",".join("?" * len(chunk))
            # latest_status: of the latest page fetched (a later reading of an older page does not
            # release a page held as suspect); latest_id: that page's snapshot while it is held,
            # else the newest snapshot, a later reading included (what an unchanged page touches)
            out.update(
                (r["name"], r)
                for r in self.query(
                    "select v.*, l.id as latest_id, s.status as latest_status, l.entry_count as latest_entries"
                    " from vendors v left join snapshots s on s.id ="
                    " (select max(id) from snapshots where vendor_id = v.id and reading_of is null)"
                    " left join snapshots l on l.id = case when s.status = 'suspect' then s.id"
                    " else (select max(id) from snapshots where vendor_id = v.id) end"
                    f" where v.name in ({marks})",
                    chunk,
                )
            )
        return out

    def freshness(self) -> dict[str, dict[str, Any]]:
        """Per vendor: whether its latest check failed to read its list (``stale``: a fetch error or a
        page held as suspect), why, and when its list was last read (``last_success``)."""
        rows = self.query(
            "select v.name, v.consecutive_failures, v.last_error,"
            " (select status from snapshots where vendor_id = v.id and reading_of is null order by id desc limit 1)"
            " as latest_status,"
            " (select max(last_seen) from snapshots where vendor_id = v.id and status in ('good', 'accepted'))"
            " as last_success from vendors v"
        )
        out = {}
        for r in rows:
            failed = bool(r["consecutive_failures"])
            held = r["latest_status"] == "suspect"
            why = (
                f"its latest check failed: {r['last_error']}"
                if failed
                else "its page is held as suspect (structure changed)"
                if held
                else None
            )
            out[r["name"]] = {"stale": failed or held, "last_success": r["last_success"], "stale_reason": why}
        return out

    def current_body(self, vendor_id: int) -> str | None:
        """The hash of the vendor's latest raw page on record."""
        row = self._one("select body_hash from vendors where id = ?", [vendor_id])
        return None if row is None else row["body_hash"]

    def vendor_id(self, name: str) -> int | None:
        row = self._one("select id from vendors where name = ? collate nocase", [name])
        return None if row is None else int(row["id"])

    def record_run(
        self, run_id: str, started: datetime, finished: datetime, checked: int, failed: int, changed: int
    ) -> None:
        self.db.table("runs").insert(
            {
                "id": run_id,
                "started_at": started.isoformat(),
                "finished_at": finished.isoformat(),
                "checked": checked,
                "failed": failed,
                "changed": changed,
            },
            replace=True,
        )

    def last_run(self) -> datetime | None:
        row = self._one("select max(started_at) as last from runs", [])
        return datetime.fromisoformat(row["last"]) if row and row["last"] else None

    def record_fetch(self, vendor_id: int, fetch: dict[str, Any]) -> None:
        """One row per attempt, kept small: the time as Unix seconds, ``url`` only when it is not the
        vendor's URL, ``final_url`` only when a redirect led elsewhere (the fetch_log view reads them)."""
        self.db.conn.execute(
            "insert into fetches (vendor_id, started_at, status, duration_ms, bytes, outcome, error, url, final_url)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                vendor_id,
                int(fetch["started_at"].timestamp()),
                fetch.get("status"),
                fetch.get("duration_ms"),
                fetch.get("bytes"),
                fetch.get("outcome"),
                fetch.get("error"),
                fetch.get("url"),
                fetch.get("final_url"),
            ],
        )

    def update_vendor(self, vendor_id: int, **values: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        self.db.execute(f"update vendors set {sets} where id = ?", [*values.values(), vendor_id])

    # --- snapshots --------------------------------------------------------------------------------

    def baseline(self, vendor_id: int) -> StoredSnapshot | None:
        """The last good snapshot: what every new page is compared with."""
        return self._snapshot_where("vendor_id = ? and status in ('good', 'accepted')", [vendor_id])

    def latest_snapshot(self, vendor_id: int) -> StoredSnapshot | None:
        """The snapshot of the latest page fetched (good or suspect; later readings of older pages aside)."""
        return self._snapshot_where("vendor_id = ? and reading_of is null", [vendor_id])

    def latest_meta(self, vendor_id: int) -> dict[str, Any] | None:
        """``latest_snapshot``'s row without its entries (cheap: for unchanged pages)."""
        return self._one(
            "select id, status, entry_count, content_hash from snapshots where vendor_id = ?"
            " and reading_of is null order by id desc limit 1",
            [vendor_id],
        )

    def snapshot_at(self, vendor_id: int, when: str) -> StoredSnapshot | None:
        return self._snapshot_where(
            "vendor_id = ? and status in ('good', 'accepted') and first_seen <= ?", [vendor_id, when]
        )

    def snapshot(self, snapshot_id: int) -> StoredSnapshot:
        snap = self._snapshot_where("id = ?", [snapshot_id])
        assert snap is not None
        return snap

    def _snapshot_where(self, where: str, params: Sequence[Any]) -> StoredSnapshot | None:
        row = self._one(f"select * from snapshots where {where} order by id desc limit 1", params)
        return None if row is None else self._load_snapshot(row)

    def _load_snapshot(self, row: dict[str, Any]) -> StoredSnapshot:
        entries = tuple(
            entry_from_row(r)
            for r in self.query(
                "select r.section, r.entity, r.purpose, r.country, r.extra from snapshot_rows sr"
                " join rows r on r.id = sr.row_id where sr.snapshot_id = ? order by sr.position",
                [row["id"]],
            )
        )
        stored = json.loads(row["columns"] or "[]")  # [[section, columns, headers]]; headers since 0.1
        cols = tuple((item[0], tuple(item[1])) for item in stored)
        headers = tuple((item[0], tuple(item[2])) for item in stored if len(item) > 2 and item[2])
        declared = date.fromisoformat(row["declared_date"]) if row["declared_date"] else None
        return StoredSnapshot(
            id=row["id"],
            vendor_id=row["vendor_id"],
            content_hash=row["content_hash"],
            status=row["status"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            declared_date=declared,
            entries=entries,
            columns=cols,
            headers=headers,
            body_hash=row["body_hash"],
            reading_of=row.get("reading_of"),
        )

    def touch_snapshot(self, snapshot_id: int, now: datetime) -> None:
        self.db.execute("update snapshots set last_seen = ? where id = ?", [now.isoformat(), snapshot_id])

    def save_body(
        self,
        body: bytes,
        content_type: str | None,
        previous: str | None = None,
        packed: bytes | None = None,
        hash_: str | None = None,
        size: int | None = None,
    ) -> str:
        """Keep a raw page as evidence: zstd, as a delta against ``previous`` (the vendor's last body)
        when there is one, so a page that changed a little costs a few hundred bytes, not 10 KB.
        ``packed`` is ``pack_body(body)``, ``hash_`` its ``body_hash`` and ``size`` its length when
        the caller already has them; ``packed`` is then stored as it is, and ``body`` may be empty."""
        h = hash_ or body_hash(body)
        size = len(body) if size is None else size
        conn = self.db.conn
        insert = (
            "insert or ignore into bodies (hash, content_type, size, data, codec, base_hash, depth)"
            " values (?, ?, ?, ?, ?, ?, ?)"
        )
        if packed is not None:  # already compressed on its own (a first body): one statement
            conn.execute(insert, (h, content_type, size, packed, "zstd", None, 0))
            return h
        if conn.execute("select 1 from bodies where hash = ?", [h]).fetchone():
            return h
        base = (
            conn.execute("select depth from bodies where hash = ?", [previous]).fetchone()
            if previous
            else None
        )
        if base is not None and base[0] < MAX_DELTA_DEPTH:
            raw, _ = self.load_body(str(previous))
            row = (h, content_type, size, pack_delta(body, raw), "zstd-delta", previous, base[0] + 1)
        else:
            row = (h, content_type, size, packed or pack_body(body), "zstd", None, 0)
        conn.execute(insert, row)
        return h

    def load_body(self, hash_: str) -> tuple[bytes, str | None]:
        row = self._one("select data, content_type, codec, base_hash from bodies where hash = ?", [hash_])
        if row is None:
            raise StoreError(str(self.path), f"raw body {hash_} is missing")
        previous = self.load_body(row["base_hash"])[0] if row["codec"] == "zstd-delta" else None
        return unpack(row["data"], row["codec"], previous), row["content_type"]

    def insert_snapshot(
        self,
        vendor_id: int,
        page: ParsedPage,
        *,
        status: str,
        now: datetime,
        body_hash: str | None,
        parser_version: str,
        chash: str | None = None,
        rows: PageRows | None = None,
        reading_config: str | None = None,
        reading_of: int | None = None,
    ) -> int:
        """A new snapshot and its rows. ``chash`` and ``rows`` (``page_rows(page.entries)``) when known.
        ``reading_of``: this is a later reading of that snapshot's raw page (which stays as it was)."""
        rows = rows or page_rows(page.entries)
        at = now.isoformat()
        cur = self.db.conn.execute(
            "insert into snapshots (vendor_id, content_hash, status, first_seen, last_seen, declared_date,"
            " parser_version, body_hash, entry_count, columns, reading_config, reading_of)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                vendor_id,
                chash or content_hash(page, rows),
                status,
                at,
                at,
                iso_date(page.last_modified),
                parser_version,
                body_hash,
                len(page.entries),
                columns_json(page),
                reading_config,
                reading_of,
            ],
        )
        sid = int(cur.lastrowid or 0)
        _insert_rows(self.db.conn, sid, rows)
        return sid

    def set_snapshot_status(self, snapshot_id: int, status: str) -> None:
        self.db.execute("update snapshots set status = ? where id = ?", [status, snapshot_id])

    # --- changes and windows ------------------------------------------------------------------------

    def insert_window(self, vendor_id: int, snapshot_id: int, window: ObjectionWindow, now: datetime) -> int:
        table = self.db.table("windows")
        table.insert(
            {
                "vendor_id": vendor_id,
                "snapshot_id": snapshot_id,
                "detected_at": now.isoformat(),
                "opens": window.opens.isoformat(),
                "deadline": window.deadline.isoformat(),
                "rule": window.rule.value,
                "late": int(window.deadline < now.date()),
                "status": "open",
                "reminders_sent": "[]",
            }
        )
        return int(table.last_pk or 0)

    def insert_changes(
        self,
        vendor_id: int,
        snapshot_id: int,
        previous_id: int | None,
        changes: Sequence[Change],
        window_ids: Sequence[int | None],
        now: datetime,
    ) -> None:
        self.db.table("changes").insert_all(
            {
                "vendor_id": vendor_id,
                "snapshot_id": snapshot_id,
                "previous_snapshot_id": previous_id,
                "window_id": wid,
                "kind": c.kind.value,
                "section": c.section,
                "entity": c.entity,
                "field": c.field,
                "old": c.old,
                "new": c.new,
                "detected_at": now.isoformat(),
            }
            for c, wid in zip(changes, window_ids, strict=True)
        )

    def window(self, window_id: int) -> dict[str, Any] | None:
        return self._one(
            "select w.*, v.name as vendor from windows w join vendors v on v.id = w.vendor_id where w.id = ?",
            [window_id],
        )

    def add_decision(self, window_id: int, action: str, by: str, note: str | None, at: datetime) -> Decision:
        """Record one more decision on a window (earlier ones stay as they are); it becomes the
        window's status. Raises NotFoundError for a window that does not exist."""
        if action not in DECISION_ACTIONS:
            raise StoreError(
                str(self.path), f"unknown decision {action!r} (one of {', '.join(DECISION_ACTIONS)})"
            )
        with self.transaction():
            if self._one("select id from windows where id = ?", [window_id]) is None:
                raise NotFoundError(f"no objection window with id {window_id}")
            cur = self.db.conn.execute(
                "insert into decisions (window_id, action, by, note, at) values (?, ?, ?, ?, ?)",
                [window_id, action, by, note, at.isoformat()],
            )
            # the window row keeps the latest decision, for queries and the views
            self.db.conn.execute(
                "update windows set status = ?, status_by = ?, status_at = ?, note = ? where id = ?",
                [action, by, at.isoformat(), note, window_id],
            )
        return Decision(int(cur.lastrowid or 0), window_id, action, by, note, at)

    def decisions(self, window_id: int) -> list[Decision]:
        """Every decision on a window, oldest first. Raises NotFoundError for a window that does not exist."""
        if self._one("select id from windows where id = ?", [window_id]) is None:
            raise NotFoundError(f"no objection window with id {window_id}")
        return [
            _decision(r)
            for r in self.query("select * from decisions where window_id = ? order by id", [window_id])
        ]

    def decisions_of(self, window_ids: Sequence[int]) -> dict[int, list[Decision]]:
        """Decisions of many windows at once, each list oldest first."""
        out: dict[int, list[Decision]] = {w: [] for w in window_ids}
        for r in self._of_windows("select * from decisions where window_id in ({}) order by id", window_ids):
            out[r["window_id"]].append(_decision(r))
        return out

    def window_entities(self, window_ids: Sequence[int]) -> dict[int, list[str]]:
        """The entities (or, for a section's change, its name) each window covers, in the order recorded."""
        out: dict[int, list[str]] = {w: [] for w in window_ids}
        sql = "select window_id, coalesce(nullif(entity, ''), new) as name from changes where window_id in ({}) order by id"
        for r in self._of_windows(sql, window_ids):
            names = out[int(r["window_id"])]
            if r["name"] and r["name"] not in names:
                names.append(r["name"])
        return out

    def _of_windows(self, sql: str, window_ids: Sequence[int]) -> Iterator[dict[str, Any]]:
        """Rows of ``sql`` (whose ``{}`` takes the placeholders) for many window ids, 500 at a time."""
        ids = list(window_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            yield from self.query(sql.format(",".join("?" * len(chunk))), chunk)

    def expire_windows(self, today: date) -> int:
        cur = self.db.execute(
            "update windows set status = 'expired' where status in ('open', 'acknowledged') and deadline < ?",
            [today.isoformat()],
        )
        return int(cur.rowcount)

    def windows(self, *, all_: bool = False) -> list[dict[str, Any]]:
        where = "" if all_ else "where w.status in ('open', 'acknowledged')"
        return list(
            self.query(
                "select w.*, v.name as vendor, v.url as url,"
                " (select count(*) from changes c where c.window_id = w.id) as change_count"
                f" from windows w join vendors v on v.id = w.vendor_id {where} order by w.deadline, w.id"
            )
        )

    def mark_reminders(self, window_id: int, offsets: Sequence[int]) -> None:
        row = self._one("select reminders_sent from windows where id = ?", [window_id])
        sent = set(json.loads(row["reminders_sent"] or "[]")) if row else set()
        self.db.execute(
            "update windows set reminders_sent = ? where id = ?",
            [json.dumps(sorted(sent | set(offsets))), window_id],
        )

    # --- outbox -------------------------------------------------------------------------------------

    def enqueue(self, alerts: Sequence[Alert], run_id: str, now: datetime) -> None:
        """Queue alerts; an alert already queued for a target (same dedupe key) is not queued again."""
        self.db.table("outbox").insert_all(
            (
                {
                    "created_at": now.isoformat(),
                    "run_id": run_id,
                    "target": a.target,
                    "vendor": a.vendor,
                    "kind": a.kind,
                    "dedupe_key": a.dedupe_key,
                    "title": a.title,
                    "body_markdown": a.body_markdown,
                    "body_html": a.body_html,
                    "body_text": a.body_text,
                    "level": a.level,
                    "status": "held" if a.held else "pending",
                    "attempts": 0,
                    "next_attempt_at": now.isoformat(),
                }
                for a in alerts
            ),
            ignore=True,
        )

    def outbox(self, statuses: Sequence[str] = ("pending",)) -> list[dict[str, Any]]:
        marks = ",".join("?" for _ in statuses)
        return list(self.query(f"select * from outbox where status in ({marks}) order by id", list(statuses)))

    def entity_names_todo(self, rules: str) -> tuple[bool, list[str]]:
        """What ``entity_names`` needs: (rebuild, spellings to read). Built by other rules: rebuild
        from every current spelling; else only the current spellings it lacks (often none)."""
        if self._one("select 1 as x from entity_names where rules != ? limit 1", [rules]) is not None:
            return True, [r["entity"] for r in self.query("select distinct entity from current_entries")]
        missing = self.query(
            "select distinct c.entity from current_entries c"
            " where not exists(select 1 from entity_names n where n.entity = c.entity)"
        )
        return False, [r["entity"] for r in missing]

    def add_entity_names(self, names: Sequence[tuple[str, str, str]], rules: str, *, rebuild: bool) -> None:
        """(spelling, company, company key) per spelling; derived data: rebuilt whole when the rules
        changed, else only added to."""
        if rebuild:
            self.db.execute("delete from entity_names")
        self.db.conn.executemany(
            "insert or replace into entity_names values (?, ?, ?, ?)", [(*n, rules) for n in names]
        )

    def _one(self, sql: str, params: Sequence[Any]) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts, straight from sqlite3 (sqlite-utils' query() adds a savepoint per call)."""
        cur = self.db.conn.execute(sql, list(params))
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.db.execute(sql, list(params)).rowcount)
