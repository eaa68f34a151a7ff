"""SQLite history through sqlite-utils: vendors, fetches, snapshots, entries, changes, windows, outbox.

The only module that imports sqlite_utils. Tables are plain and documented so a user can read
them with ``sqlite-utils`` or Datasette without our code; views cover the common questions.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import zstandard
from sqlite_utils import Database, Migrations

from policy_watch.errors import LockedError, StoreError
from policy_watch.models import Change, ChangeKind, Entry, ObjectionWindow, ParsedPage

migrations = Migrations("policy_watch")
ZSTD_LEVEL = 3  # level 9 saves 13% of space for 5x the time; deltas keep the history small anyway
MAX_DELTA_DEPTH = 16  # a body is rebuilt from at most this many deltas


@migrations()
def m001_initial(db: Database) -> None:
    db.table("vendors").create(
        {"id": int, "name": str, "url": str, "created_at": str, "etag": str, "last_modified_header": str,
         "body_hash": str, "consecutive_failures": int, "failing": int, "last_error": str},
        pk="id", not_null={"name"}, defaults={"consecutive_failures": 0, "failing": 0},
    )  # fmt: skip
    db.table("vendors").create_index(["name"], unique=True)
    db.table("bodies").create({"hash": str, "content_type": str, "size": int, "body_zlib": bytes}, pk="hash")
    db.table("snapshots").create(
        {"id": int, "vendor_id": int, "content_hash": str, "status": str, "first_seen": str, "last_seen": str,
         "declared_date": str, "parser_version": str, "body_hash": str, "entry_count": int, "columns": str},
        pk="id", foreign_keys=[("vendor_id", "vendors", "id"), ("body_hash", "bodies", "hash")],
    )  # fmt: skip
    db.table("snapshots").create_index(["vendor_id", "first_seen"])
    db.table("entries").create(
        {"snapshot_id": int, "position": int, "section": str, "entity": str, "purpose": str, "country": str,
         "extra": str},
        pk=("snapshot_id", "position"), foreign_keys=[("snapshot_id", "snapshots", "id")],
    )  # fmt: skip
    db.table("entries").create_index(["entity"])
    db.table("fetches").create(
        {"id": int, "vendor_id": int, "started_at": str, "url": str, "final_url": str, "status": int,
         "duration_ms": int, "bytes": int, "outcome": str, "error": str, "snapshot_id": int},
        pk="id", foreign_keys=[("vendor_id", "vendors", "id")],
    )  # fmt: skip
    db.table("fetches").create_index(["vendor_id", "started_at"])
    db.table("windows").create(
        {"id": int, "vendor_id": int, "snapshot_id": int, "detected_at": str, "opens": str, "deadline": str,
         "rule": str, "late": int, "status": str, "status_by": str, "status_at": str, "note": str,
         "reminders_sent": str},
        pk="id", foreign_keys=[("vendor_id", "vendors", "id"), ("snapshot_id", "snapshots", "id")],
        defaults={"status": "open", "reminders_sent": "[]"},
    )  # fmt: skip
    db.table("changes").create(
        {"id": int, "vendor_id": int, "snapshot_id": int, "previous_snapshot_id": int, "window_id": int,
         "kind": str, "section": str, "entity": str, "field": str, "old": str, "new": str, "detected_at": str},
        pk="id", foreign_keys=[("vendor_id", "vendors", "id"), ("snapshot_id", "snapshots", "id"),
                               ("window_id", "windows", "id")],
    )  # fmt: skip
    db.table("changes").create_index(["vendor_id", "detected_at"])
    db.table("outbox").create(
        {"id": int, "created_at": str, "run_id": str, "target": str, "vendor": str, "kind": str,
         "dedupe_key": str, "title": str, "body_markdown": str, "body_html": str, "body_text": str,
         "status": str, "attempts": int, "last_error": str, "next_attempt_at": str, "sending_at": str,
         "sent_at": str},
        pk="id", defaults={"status": "pending", "attempts": 0},
    )  # fmt: skip
    db.table("outbox").create_index(["target", "dedupe_key"], unique=True)
    db.table("outbox").create_index(["status"])


@migrations()
def m002_runs(db: Database) -> None:
    """One row per check of all vendors: when it ran and how it went (the daemon catches up from it)."""
    db.table("runs").create(
        {"id": str, "started_at": str, "finished_at": str, "checked": int, "failed": int, "changed": int},
        pk="id",
    )
    db.table("fetches").add_column("run_id", str)


@migrations()
def m003_compact_history(db: Database) -> None:
    """Storage that grows with changes, not with runs.

    - rows are stored once (content-addressed) and snapshots point at them (snapshot_rows);
      ``entries`` becomes a view with the same columns as the old table;
    - raw bodies are zstd-compressed, most as a delta against the vendor's previous body;
    - a fetch stores its URL only when it differs from the vendor's (see the fetch_log view).
    """
    for view in ("current_entries", "entity_usage", "change_log", "open_windows"):
        db.execute(f"drop view if exists {view}")
    db.execute("alter table bodies rename column body_zlib to data")
    db.execute("alter table bodies add column codec text not null default 'zlib'")
    db.execute("alter table bodies add column base_hash text")
    db.execute("alter table bodies add column depth integer not null default 0")
    db.execute(
        "create table rows (id integer primary key, hash blob not null unique, section text, entity text,"
        " purpose text, country text, extra text)"
    )
    db.execute(
        "create table snapshot_rows (snapshot_id integer not null references snapshots(id), position integer"
        " not null, row_id integer not null references rows(id), primary key (snapshot_id, position)) without rowid"
    )
    old = db.execute("select snapshot_id, position, section, entity, purpose, country, extra from entries")
    for snapshot_id, position, *cells in old.fetchall():
        row_id = _row_id(db.conn, tuple(cells))
        db.execute("insert into snapshot_rows values (?, ?, ?)", [snapshot_id, position, row_id])
    db.execute("drop table entries")
    # fetches: one small row per attempt (the log is the one table that grows with every run)
    db.execute(
        "create table fetches_compact (id integer primary key, vendor_id integer not null references vendors(id),"
        " started_at integer not null, status integer, duration_ms integer, bytes integer, outcome text,"
        " error text, url text, final_url text)"
    )
    db.execute(
        "insert into fetches_compact select f.id, f.vendor_id, cast(strftime('%s', f.started_at) as integer),"
        " f.status, f.duration_ms, f.bytes, f.outcome, f.error,"
        " nullif(f.url, v.url), nullif(f.final_url, coalesce(f.url, v.url))"
        " from fetches f join vendors v on v.id = f.vendor_id"
    )
    db.execute("drop table fetches")
    db.execute("alter table fetches_compact rename to fetches")
    db.execute("create index if not exists idx_changes_window_id on changes(window_id)")


def _row_key(cells: tuple[Any, ...]) -> bytes:
    """16-byte identity of a row's content (cells joined by a separator no page text holds)."""
    return hashlib.blake2b("\x1f".join(cells).encode(), digest_size=16).digest()


def _row_id(conn: sqlite3.Connection, cells: tuple[Any, ...]) -> int:
    key = _row_key(cells)
    conn.execute("insert or ignore into rows (hash, section, entity, purpose, country, extra) values (?, ?, ?, ?, ?, ?)",
                 [key, *cells])  # fmt: skip
    return int(conn.execute("select id from rows where hash = ?", [key]).fetchone()[0])


def _create_views(db: Database) -> None:
    views = {
        "entries": """
            select sr.snapshot_id, sr.position, r.section, r.entity, r.purpose, r.country, r.extra
            from snapshot_rows sr join rows r on r.id = sr.row_id""",
        "fetch_log": """
            select f.id, v.name as vendor, datetime(f.started_at, 'unixepoch') || 'Z' as started_at,
                   coalesce(f.url, v.url) as url, coalesce(f.final_url, f.url, v.url) as final_url,
                   f.status, f.duration_ms, f.bytes, f.outcome, f.error
            from fetches f join vendors v on v.id = f.vendor_id""",
        "current_entries": """
            select v.name as vendor, e.section, e.entity, e.purpose, e.country, e.extra,
                   s.id as snapshot_id, s.first_seen, s.last_seen, s.declared_date
            from vendors v
            join snapshots s on s.id = (
                select id from snapshots where vendor_id = v.id and status in ('good', 'accepted')
                order by id desc limit 1)
            join entries e on e.snapshot_id = s.id
            order by v.name, e.position""",
        "change_log": """
            select c.id, v.name as vendor, c.kind, c.section, c.entity, c.field, c.old, c.new,
                   c.detected_at, w.opens as window_opens, w.deadline, w.status as window_status
            from changes c join vendors v on v.id = c.vendor_id
            left join windows w on w.id = c.window_id
            order by c.detected_at desc, c.id desc""",
        "open_windows": """
            select w.id, v.name as vendor, w.opens, w.deadline, w.rule, w.late, w.status,
                   cast(julianday(w.deadline) - julianday(date('now')) as integer) as days_left,
                   (select count(*) from changes c where c.window_id = w.id) as changes
            from windows w join vendors v on v.id = w.vendor_id
            where w.status in ('open', 'acknowledged') and w.deadline >= date('now')
            order by w.deadline""",
        "entity_usage": """
            select entity, vendor, section, purpose, country from current_entries
            order by lower(entity), vendor""",
    }
    wanted = {name: f"create view {name} as {sql.strip()}" for name, sql in views.items()}
    have = dict(db.conn.execute("select name, sql from sqlite_master where type = 'view'").fetchall())
    if have == wanted:
        return  # already current: opening a database for reading writes nothing
    for name in have:
        db.execute(f"drop view if exists {name}")
    for name, sql in views.items():
        db.execute(f"create view {name} as {sql.strip()}")


def content_hash(page: ParsedPage) -> str:
    """Hash of the normalised content: rows (order-free), columns and the declared date."""
    digest = hashlib.sha256()
    for key in sorted(_row_key(_cells(e)) for e in page.entries):
        digest.update(key)
    tail = [sorted([s, list(c)] for s, c in page.columns), _iso(page.last_modified)]
    digest.update(json.dumps(tail, ensure_ascii=False).encode())
    return digest.hexdigest()


def pack_body(body: bytes) -> bytes:
    """A body compressed on its own (zstd releases the GIL: fetch threads can do this in parallel)."""
    return bytes(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body))


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class VendorState:
    id: int
    name: str
    etag: str | None
    last_modified_header: str | None
    body_hash: str | None
    consecutive_failures: int
    failing: bool
    latest_id: int | None = None  # the latest snapshot (good or suspect) when the run started
    latest_status: str | None = None
    latest_entries: int = 0


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    id: int
    vendor_id: int
    content_hash: str
    status: str
    first_seen: str
    last_seen: str
    declared_date: date | None
    entries: tuple[Entry, ...]
    columns: tuple[tuple[str, tuple[str, ...]], ...]
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def page(self) -> ParsedPage:
        return ParsedPage(entries=self.entries, last_modified=self.declared_date, columns=self.columns,
                          headers=self.headers)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Alert:
    """One message for one target, written to the outbox with the changes it reports."""

    target: str
    vendor: str
    kind: str
    dedupe_key: str
    title: str
    body_markdown: str
    body_html: str
    body_text: str
    held: bool = False  # digest targets: merged into one message at the end of the run


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
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 30000")
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL cannot corrupt the database; a power cut may lose the last commits,
        # which the next run simply re-checks. It saves an fsync per transaction.
        db.execute("PRAGMA synchronous = NORMAL")
        migrations.apply(db)
        _create_views(db)
    except sqlite3.DatabaseError as e:
        raise StoreError(str(path), f"cannot open database: {e} (the file was left untouched)") from None
    return db


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
        yield
    finally:
        os.close(fd)


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _columns_json(page: ParsedPage) -> str:
    headers = dict(page.headers)
    return json.dumps([[s, list(c), list(headers.get(s, ()))] for s, c in page.columns], ensure_ascii=False)


def _cells(e: Entry) -> tuple[str, str, str, str, str]:
    extra = json.dumps(dict(e.extra), ensure_ascii=False) if e.extra else "{}"
    return (e.section, e.entity, e.purpose, e.country, extra)


def _insert_rows(conn: sqlite3.Connection, snapshot_id: int, entries: Sequence[Entry]) -> None:
    """Point a snapshot at its rows; a row already stored for any snapshot is stored once."""
    cells = [_cells(e) for e in entries]
    keys = [_row_key(c) for c in cells]
    conn.executemany(
        "insert or ignore into rows (hash, section, entity, purpose, country, extra) values (?, ?, ?, ?, ?, ?)",
        [(k, *c) for k, c in zip(keys, cells, strict=True)],
    )
    ids: dict[bytes, int] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ",".join("?" * len(chunk))
        ids.update(conn.execute(f"select hash, id from rows where hash in ({marks})", chunk).fetchall())
    conn.executemany("insert into snapshot_rows values (?, ?, ?)",
                     [(snapshot_id, i, ids[k]) for i, k in enumerate(keys)])  # fmt: skip


def entry_from_row(row: dict[str, Any]) -> Entry:
    extra = json.loads(row["extra"] or "{}")
    return Entry(section=row["section"] or "", entity=row["entity"], purpose=row["purpose"] or "",
                 country=row["country"] or "", extra=tuple(extra.items()))  # fmt: skip


class Store:
    """Reads and writes the history. Writes that belong together happen in one transaction."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Store:
        return cls(open_database(path, create=create), path)

    def close(self) -> None:
        self.db.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested, a savepoint. The outermost takes the write lock up front
        (BEGIN IMMEDIATE) so it waits for another writer instead of failing on a lock upgrade."""
        conn = self.db.conn
        if conn.in_transaction:
            try:
                with self.db.atomic():
                    yield
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
    def batch(self, size: int = 64, seconds: float = 1.0) -> Iterator[Callable[[], None]]:
        """Group many vendors' transactions (each then a savepoint) into fewer commits.

        Yields ``tick``: call it after each unit of work; it commits every ``size`` units or
        ``seconds``. Whatever was done is committed on the way out.
        """
        conn = self.db.conn
        state = {"count": 0, "since": time.monotonic()}

        def tick() -> None:
            state["count"] += 1
            if state["count"] >= size or time.monotonic() - state["since"] > seconds:
                self._commit()
                self._begin()
                state["count"], state["since"] = 0, time.monotonic()

        self._begin()
        try:
            yield tick
        finally:
            if conn.in_transaction:
                self._commit()

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
            known = {r["name"]: r for r in self.query("select * from vendors")}
            for name, url in vendors:
                row = known.get(name)
                if row is None:
                    self.db.conn.execute(
                        "insert into vendors (name, url, created_at, consecutive_failures, failing) values (?, ?, ?, 0, 0)",
                        [name, url, now.isoformat()],
                    )
                elif row["url"] != url:
                    # earlier fetches went to the old URL: write it out before the vendor's URL changes
                    self.db.execute(
                        "update fetches set url = ? where vendor_id = ? and url is null",
                        [row["url"], row["id"]],
                    )
                    self.db.execute("update vendors set url = ?, etag = null, last_modified_header = null where id = ?",
                                    [url, row["id"]])  # fmt: skip
            rows = {r["name"]: r for r in self.query(
                "select v.*, s.id as latest_id, s.status as latest_status, s.entry_count as latest_entries"
                " from vendors v left join snapshots s on s.id = (select max(id) from snapshots where vendor_id = v.id)"
            )}  # fmt: skip
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
            )
            for name, _ in vendors
            for r in (rows[name],)
        }

    def vendor_id(self, name: str) -> int | None:
        row = self._one("select id from vendors where name = ? collate nocase", [name])
        return None if row is None else int(row["id"])

    def record_run(self, run_id: str, started: datetime, finished: datetime, checked: int, failed: int,
                   changed: int) -> None:  # fmt: skip
        self.db.table("runs").insert({"id": run_id, "started_at": started.isoformat(),
                                      "finished_at": finished.isoformat(), "checked": checked,
                                      "failed": failed, "changed": changed}, replace=True)  # fmt: skip

    def last_run(self) -> datetime | None:
        row = self._one("select max(started_at) as last from runs", [])
        return datetime.fromisoformat(row["last"]) if row and row["last"] else None

    def record_fetch(self, vendor_id: int, fetch: dict[str, Any]) -> None:
        """One row per attempt, kept small: the time as Unix seconds, ``url`` only when it is not the
        vendor's URL, ``final_url`` only when a redirect led elsewhere (the fetch_log view reads them)."""
        self.db.conn.execute(
            "insert into fetches (vendor_id, started_at, status, duration_ms, bytes, outcome, error, url, final_url)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [vendor_id, int(fetch["started_at"].timestamp()), fetch.get("status"), fetch.get("duration_ms"),
             fetch.get("bytes"), fetch.get("outcome"), fetch.get("error"), fetch.get("url"), fetch.get("final_url")],
        )  # fmt: skip

    def update_vendor(self, vendor_id: int, **values: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        self.db.execute(f"update vendors set {sets} where id = ?", [*values.values(), vendor_id])

    # --- snapshots --------------------------------------------------------------------------------

    def baseline(self, vendor_id: int) -> StoredSnapshot | None:
        """The last good snapshot: what every new page is compared with."""
        return self._snapshot_where("vendor_id = ? and status in ('good', 'accepted')", [vendor_id])

    def latest_snapshot(self, vendor_id: int) -> StoredSnapshot | None:
        return self._snapshot_where("vendor_id = ?", [vendor_id])

    def latest_meta(self, vendor_id: int) -> dict[str, Any] | None:
        """The latest snapshot's row without its entries (cheap: for unchanged pages)."""
        return self._one("select id, status, entry_count, content_hash from snapshots where vendor_id = ? order by id desc limit 1",
                         [vendor_id])  # fmt: skip

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
        return StoredSnapshot(id=row["id"], vendor_id=row["vendor_id"], content_hash=row["content_hash"],
                              status=row["status"], first_seen=row["first_seen"], last_seen=row["last_seen"],
                              declared_date=declared, entries=entries, columns=cols, headers=headers)  # fmt: skip

    def touch_snapshot(self, snapshot_id: int, now: datetime) -> None:
        self.db.execute("update snapshots set last_seen = ? where id = ?", [now.isoformat(), snapshot_id])

    def save_body(
        self, body: bytes, content_type: str | None, previous: str | None = None, packed: bytes | None = None
    ) -> str:
        """Keep a raw page as evidence: zstd, as a delta against ``previous`` (the vendor's last body)
        when there is one, so a page that changed a little costs a few hundred bytes, not 10 KB.
        ``packed`` is ``pack_body(body)`` when the caller already computed it (on another thread)."""
        h = body_hash(body)
        conn = self.db.conn
        if conn.execute("select 1 from bodies where hash = ?", [h]).fetchone():
            return h
        base = (
            conn.execute("select depth from bodies where hash = ?", [previous]).fetchone()
            if previous
            else None
        )
        if base is not None and base[0] < MAX_DELTA_DEPTH:
            raw, _ = self.load_body(str(previous))
            zdict = zstandard.ZstdCompressionDict(raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            data = zstandard.ZstdCompressor(level=ZSTD_LEVEL, dict_data=zdict).compress(body)
            row = (h, content_type, len(body), data, "zstd-delta", previous, base[0] + 1)
        else:
            row = (h, content_type, len(body), packed or pack_body(body), "zstd", None, 0)
        conn.execute("insert into bodies (hash, content_type, size, data, codec, base_hash, depth)"
                     " values (?, ?, ?, ?, ?, ?, ?)", row)  # fmt: skip
        return h

    def load_body(self, hash_: str) -> tuple[bytes, str | None]:
        row = self._one("select data, content_type, codec, base_hash from bodies where hash = ?", [hash_])
        if row is None:
            raise StoreError(str(self.path), f"raw body {hash_} is missing")
        data, codec = row["data"], row["codec"]
        if codec == "zlib":
            return zlib.decompress(data), row["content_type"]
        if codec == "zstd":
            return zstandard.ZstdDecompressor().decompress(data), row["content_type"]
        raw, _ = self.load_body(row["base_hash"])
        zdict = zstandard.ZstdCompressionDict(raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdDecompressor(dict_data=zdict).decompress(data), row["content_type"]

    def insert_snapshot(
        self, vendor_id: int, page: ParsedPage, *, status: str, now: datetime, body_hash: str | None,
        parser_version: str, chash: str | None = None,
    ) -> int:  # fmt: skip
        at = now.isoformat()
        cur = self.db.conn.execute(
            "insert into snapshots (vendor_id, content_hash, status, first_seen, last_seen, declared_date,"
            " parser_version, body_hash, entry_count, columns) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [vendor_id, chash or content_hash(page), status, at, at, _iso(page.last_modified), parser_version,
             body_hash, len(page.entries), _columns_json(page)],
        )  # fmt: skip
        sid = int(cur.lastrowid or 0)
        _insert_rows(self.db.conn, sid, page.entries)
        return sid

    def set_snapshot_status(self, snapshot_id: int, status: str) -> None:
        self.db.execute("update snapshots set status = ? where id = ?", [status, snapshot_id])

    def replace_entries(self, snapshot_id: int, page: ParsedPage, parser_version: str) -> None:
        self.db.execute("delete from snapshot_rows where snapshot_id = ?", [snapshot_id])
        _insert_rows(self.db.conn, snapshot_id, page.entries)
        self.db.execute(
            "update snapshots set content_hash = ?, entry_count = ?, columns = ?, declared_date = ?,"
            " parser_version = ? where id = ?",
            [content_hash(page), len(page.entries), _columns_json(page),
             _iso(page.last_modified), parser_version, snapshot_id],
        )  # fmt: skip

    # --- changes and windows ------------------------------------------------------------------------

    def insert_window(self, vendor_id: int, snapshot_id: int, window: ObjectionWindow, now: datetime) -> int:
        table = self.db.table("windows")
        table.insert({"vendor_id": vendor_id, "snapshot_id": snapshot_id, "detected_at": now.isoformat(),
                      "opens": window.opens.isoformat(), "deadline": window.deadline.isoformat(),
                      "rule": window.rule.value, "late": int(window.deadline < now.date()), "status": "open",
                      "reminders_sent": "[]"})  # fmt: skip
        return int(table.last_pk or 0)

    def insert_changes(
        self, vendor_id: int, snapshot_id: int, previous_id: int | None, changes: Sequence[Change],
        window_ids: Sequence[int | None], now: datetime,
    ) -> None:  # fmt: skip
        self.db.table("changes").insert_all(
            {"vendor_id": vendor_id, "snapshot_id": snapshot_id, "previous_snapshot_id": previous_id,
             "window_id": wid, "kind": c.kind.value, "section": c.section, "entity": c.entity, "field": c.field,
             "old": c.old, "new": c.new, "detected_at": now.isoformat()}
            for c, wid in zip(changes, window_ids, strict=True)
        )  # fmt: skip

    def changes_for_snapshot(self, snapshot_id: int) -> list[Change]:
        return [
            Change(ChangeKind(r["kind"]), r["section"], r["entity"], r["field"], r["old"], r["new"])
            for r in self.query("select * from changes where snapshot_id = ? order by id", [snapshot_id])
        ]

    def window(self, window_id: int) -> dict[str, Any] | None:
        return self._one("select w.*, v.name as vendor from windows w join vendors v on v.id = w.vendor_id"
                         " where w.id = ?", [window_id])  # fmt: skip

    def set_window_status(
        self, window_id: int, status: str, by: str, note: str | None, now: datetime
    ) -> None:
        self.db.execute("update windows set status = ?, status_by = ?, status_at = ?, note = ? where id = ?",
                        [status, by, now.isoformat(), note, window_id])  # fmt: skip

    def expire_windows(self, today: date) -> int:
        cur = self.db.execute("update windows set status = 'expired' where status in ('open', 'acknowledged')"
                              " and deadline < ?", [today.isoformat()])  # fmt: skip
        return int(cur.rowcount)

    def windows(self, *, all_: bool = False) -> list[dict[str, Any]]:
        where = "" if all_ else "where w.status in ('open', 'acknowledged')"
        return list(self.query(
            "select w.*, v.name as vendor, v.url as url,"
            " (select count(*) from changes c where c.window_id = w.id) as change_count"
            f" from windows w join vendors v on v.id = w.vendor_id {where} order by w.deadline, w.id"
        ))  # fmt: skip

    def mark_reminders(self, window_id: int, offsets: Sequence[int]) -> None:
        row = self._one("select reminders_sent from windows where id = ?", [window_id])
        sent = set(json.loads(row["reminders_sent"] or "[]")) if row else set()
        self.db.execute("update windows set reminders_sent = ? where id = ?",
                        [json.dumps(sorted(sent | set(offsets))), window_id])  # fmt: skip

    # --- outbox -------------------------------------------------------------------------------------

    def enqueue(self, alerts: Sequence[Alert], run_id: str, now: datetime) -> None:
        """Queue alerts; an alert already queued for a target (same dedupe key) is not queued again."""
        self.db.table("outbox").insert_all(
            ({"created_at": now.isoformat(), "run_id": run_id, "target": a.target, "vendor": a.vendor,
              "kind": a.kind, "dedupe_key": a.dedupe_key, "title": a.title, "body_markdown": a.body_markdown,
              "body_html": a.body_html, "body_text": a.body_text, "status": "held" if a.held else "pending",
              "attempts": 0, "next_attempt_at": now.isoformat()} for a in alerts),
            ignore=True,
        )  # fmt: skip

    def outbox(self, statuses: Sequence[str] = ("pending",)) -> list[dict[str, Any]]:
        marks = ",".join("?" for _ in statuses)
        return list(self.query(f"select * from outbox where status in ({marks}) order by id", list(statuses)))

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
