"""The database schema: migrations (applied in place, never dropped) and the views users query.

Tables, for readers without our code: vendors, fetches (every attempt; ``fetch_log`` reads it),
snapshots (one per distinct parsed content), rows + snapshot_rows (``entries`` reads them),
changes, windows, decisions (every decision on a window, never updated), outbox, bodies (raw
pages, zstd, mostly as deltas), runs.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from sqlite_utils import Database, Migrations

migrations = Migrations("policy_watch")


@migrations()
def m001_initial(db: Database) -> None:
    db.table("vendors").create(
        {
            "id": int,
            "name": str,
            "url": str,
            "created_at": str,
            "etag": str,
            "last_modified_header": str,
            "body_hash": str,
            "consecutive_failures": int,
            "failing": int,
            "last_error": str,
        },
        pk="id",
        not_null={"name"},
        defaults={"consecutive_failures": 0, "failing": 0},
    )
    db.table("vendors").create_index(["name"], unique=True)
    db.table("bodies").create({"hash": str, "content_type": str, "size": int, "body_zlib": bytes}, pk="hash")
    db.table("snapshots").create(
        {
            "id": int,
            "vendor_id": int,
            "content_hash": str,
            "status": str,
            "first_seen": str,
            "last_seen": str,
            "declared_date": str,
            "parser_version": str,
            "body_hash": str,
            "entry_count": int,
            "columns": str,
        },
        pk="id",
        foreign_keys=[("vendor_id", "vendors", "id"), ("body_hash", "bodies", "hash")],
    )
    db.table("snapshots").create_index(["vendor_id", "first_seen"])
    db.table("entries").create(
        {
            "snapshot_id": int,
            "position": int,
            "section": str,
            "entity": str,
            "purpose": str,
            "country": str,
            "extra": str,
        },
        pk=("snapshot_id", "position"),
        foreign_keys=[("snapshot_id", "snapshots", "id")],
    )
    db.table("entries").create_index(["entity"])
    db.table("fetches").create(
        {
            "id": int,
            "vendor_id": int,
            "started_at": str,
            "url": str,
            "final_url": str,
            "status": int,
            "duration_ms": int,
            "bytes": int,
            "outcome": str,
            "error": str,
            "snapshot_id": int,
        },
        pk="id",
        foreign_keys=[("vendor_id", "vendors", "id")],
    )
    db.table("fetches").create_index(["vendor_id", "started_at"])
    db.table("windows").create(
        {
            "id": int,
            "vendor_id": int,
            "snapshot_id": int,
            "detected_at": str,
            "opens": str,
            "deadline": str,
            "rule": str,
            "late": int,
            "status": str,
            "status_by": str,
            "status_at": str,
            "note": str,
            "reminders_sent": str,
        },
        pk="id",
        foreign_keys=[("vendor_id", "vendors", "id"), ("snapshot_id", "snapshots", "id")],
        defaults={"status": "open", "reminders_sent": "[]"},
    )
    db.table("changes").create(
        {
            "id": int,
            "vendor_id": int,
            "snapshot_id": int,
            "previous_snapshot_id": int,
            "window_id": int,
            "kind": str,
            "section": str,
            "entity": str,
            "field": str,
            "old": str,
            "new": str,
            "detected_at": str,
        },
        pk="id",
        foreign_keys=[
            ("vendor_id", "vendors", "id"),
            ("snapshot_id", "snapshots", "id"),
            ("window_id", "windows", "id"),
        ],
    )
    db.table("changes").create_index(["vendor_id", "detected_at"])
    db.table("outbox").create(
        {
            "id": int,
            "created_at": str,
            "run_id": str,
            "target": str,
            "vendor": str,
            "kind": str,
            "dedupe_key": str,
            "title": str,
            "body_markdown": str,
            "body_html": str,
            "body_text": str,
            "status": str,
            "attempts": int,
            "last_error": str,
            "next_attempt_at": str,
            "sending_at": str,
            "sent_at": str,
        },
        pk="id",
        defaults={"status": "pending", "attempts": 0},
    )
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


@migrations()
def m004_decisions(db: Database) -> None:
    """Decisions on objection windows become an append-only history: one row per decision (who,
    when, note), never updated. A window's existing decision becomes its first row; the window's
    ``status`` (and ``status_by``, ``status_at``, ``note``) keep the latest decision for queries."""
    db.execute(
        "create table decisions (id integer primary key, window_id integer not null references windows(id),"
        " action text not null, by text not null, note text, at text not null)"
    )
    db.execute("create index idx_decisions_window_id on decisions(window_id, id)")
    db.execute(
        "insert into decisions (window_id, action, by, note, at)"
        " select id, status, coalesce(status_by, ''), note, coalesce(status_at, detected_at) from windows"
        " where status in ('acknowledged', 'objected', 'accepted') or status_by is not null"
        " order by coalesce(status_at, detected_at), id"
    )


@migrations()
def m005_readings(db: Database) -> None:
    """A page may be read again (a vendor's parse rules or the parser changed) without touching
    what was recorded: the new reading is a snapshot of its own, ``reading_of`` the snapshot first
    recorded from the same raw body. ``reading_config`` is the fingerprint of how a snapshot was
    read (parser version and the vendor's parse rules); a vendor's is the one its current page
    was last read with, so a changed config is noticed on the next run."""
    db.execute("alter table snapshots add column reading_of integer references snapshots(id)")
    db.execute("alter table snapshots add column reading_config text")
    db.execute("alter table vendors add column reading_config text")
    db.execute("create table schema_info (key text primary key, value text)")  # which version last migrated


@migrations()
def m006_entity_names(db: Database) -> None:
    """Which company each spelling of an entity names, by policy-watch's name and alias rules, so SQL
    readers (the Datasette canned query) can group across vendors. Derived from the entries and
    rebuilt when they or the rules change; not evidence. ``rules`` fingerprints the rules used."""
    db.execute(
        "create table entity_names (entity text primary key, company text not null,"
        " company_key text not null, rules text not null)"
    )


@migrations()
def m007_alert_level(db: Database) -> None:
    """Each alert's level (info, success, warning, failure), sent to targets as apprise's notify type."""
    db.table("outbox").add_column("level", str, not_null_default="info")


ROW_KEY_BYTES = 16


def row_key(cells: tuple[Any, ...]) -> bytes:
    """16-byte identity of a row's content (cells joined by a separator no page text holds)."""
    return hashlib.blake2b("\x1f".join(cells).encode(), digest_size=ROW_KEY_BYTES).digest()


INSERT_ROW = (
    "insert or ignore into rows (hash, section, entity, purpose, country, extra) values (?, ?, ?, ?, ?, ?)"
)


def _row_id(conn: sqlite3.Connection, cells: tuple[Any, ...]) -> int:
    key = row_key(cells)
    conn.execute(INSERT_ROW, [key, *cells])
    return int(conn.execute("select id from rows where hash = ?", [key]).fetchone()[0])


def _wanted_views() -> dict[str, str]:
    """Each view's CREATE statement exactly as SQLite keeps it in sqlite_master (which spells the
    leading keywords in capitals whatever was written: compared in lower case, every open of the
    database dropped and made the views again, a write that waited for a running check)."""
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
    return {name: f"CREATE VIEW {name} AS {sql.strip()}" for name, sql in views.items()}


def create_views(db: Database) -> None:
    have = dict(db.conn.execute("select name, sql from sqlite_master where type = 'view'").fetchall())
    if have == _wanted_views():
        return  # already current: opening a database writes nothing
    for name in have:
        db.execute(f"drop view if exists {name}")
    for sql in _wanted_views().values():
        db.execute(sql)


def views_current(db: Database) -> bool:
    have = dict(db.conn.execute("select name, sql from sqlite_master where type = 'view'").fetchall())
    return have == _wanted_views()
