"""Snapshots (one per distinct reading of a vendor's list) with their rows, and the raw pages
(bodies) they were read from."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from policy_watch.errors import StoreError
from policy_watch.models import ParsedPage, SnapshotStatus
from policy_watch.store.part import Part
from policy_watch.store.records import (
    MAX_DELTA_DEPTH,
    PageRows,
    StoredSnapshot,
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
from policy_watch.store.rows import IS_BASELINE, SnapshotMeta, SnapshotSummary
from policy_watch.store.schema import INSERT_ROW, ROW_KEY_BYTES

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
_INSERT_SNAPSHOT = (
    "insert into snapshots (vendor_id, content_hash, status, first_seen, last_seen, declared_date,"
    " parser_version, body_hash, entry_count, columns, reading_config, reading_of)"
    " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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


class Snapshots(Part):
    """Each vendor's readings of its list; the last good one is the baseline new pages are compared with."""

    def baseline(self, vendor_id: int) -> StoredSnapshot | None:
        """The last good snapshot: what every new page is compared with."""
        return self._where(f"vendor_id = ? and {IS_BASELINE}", [vendor_id])

    def latest(self, vendor_id: int) -> StoredSnapshot | None:
        """The snapshot of the latest page fetched (good or suspect; later readings of older pages aside)."""
        return self._where("vendor_id = ? and reading_of is null", [vendor_id])

    def latest_meta(self, vendor_id: int) -> SnapshotMeta | None:
        """``latest``'s row without its entries (cheap: for unchanged pages)."""
        row = self._conn.execute(
            "select id, status, entry_count, content_hash from snapshots where vendor_id = ?"
            " and reading_of is null order by id desc limit 1",
            [vendor_id],
        ).fetchone()
        return None if row is None else SnapshotMeta(row[0], SnapshotStatus(row[1]), row[2] or 0, row[3])

    def at(self, vendor_id: int, when: str) -> StoredSnapshot | None:
        """The last good snapshot first seen at or before ``when`` (an ISO time)."""
        return self._where(f"vendor_id = ? and {IS_BASELINE} and first_seen <= ?", [vendor_id, when])

    def get(self, snapshot_id: int) -> StoredSnapshot:
        snap = self._where("id = ?", [snapshot_id])
        assert snap is not None
        return snap

    def summaries(self, vendor_id: int) -> list[SnapshotSummary]:
        """The vendor's snapshots, oldest first, with their dates and counts."""
        return [
            SnapshotSummary(**{**r, "status": SnapshotStatus(r["status"])})
            for r in self._query(
                "select s.id, s.status, s.first_seen, s.last_seen, s.declared_date, s.entry_count as entries,"
                " (select count(*) from changes c where c.snapshot_id = s.id) as changes, s.parser_version,"
                " s.reading_of from snapshots s where s.vendor_id = ? order by s.id",
                [vendor_id],
            )
        ]

    def _where(self, where: str, params: Sequence[Any]) -> StoredSnapshot | None:
        row = self._one(f"select * from snapshots where {where} order by id desc limit 1", params)
        return None if row is None else self._load(row)

    def _load(self, row: dict[str, Any]) -> StoredSnapshot:
        entries = tuple(
            entry_from_row(r)
            for r in self._query(
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
            status=SnapshotStatus(row["status"]),
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            declared_date=declared,
            entries=entries,
            columns=cols,
            headers=headers,
            body_hash=row["body_hash"],
            reading_of=row.get("reading_of"),
        )

    def touch(self, snapshot_id: int, now: datetime) -> None:
        """The snapshot's content was seen again."""
        self._conn.execute("update snapshots set last_seen = ? where id = ?", [now.isoformat(), snapshot_id])

    def insert(
        self,
        vendor_id: int,
        page: ParsedPage,
        *,
        status: SnapshotStatus,
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
        cur = self._conn.execute(
            _INSERT_SNAPSHOT,
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
        _insert_rows(self._conn, sid, rows)
        return sid

    def set_status(self, snapshot_id: int, status: SnapshotStatus) -> None:
        self._conn.execute("update snapshots set status = ? where id = ?", [status, snapshot_id])


class Bodies(Part):
    """Raw pages kept as evidence, each stored once by its hash."""

    def save(
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
        conn = self._conn
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
            raw, _ = self.load(str(previous))
            row = (h, content_type, size, pack_delta(body, raw), "zstd-delta", previous, base[0] + 1)
        else:
            row = (h, content_type, size, packed or pack_body(body), "zstd", None, 0)
        conn.execute(insert, row)
        return h

    def load(self, hash_: str) -> tuple[bytes, str | None]:
        """The raw page and its content type."""
        row = self._one("select data, content_type, codec, base_hash from bodies where hash = ?", [hash_])
        if row is None:
            raise StoreError(str(self._store.path), f"raw body {hash_} is missing")
        previous = self.load(row["base_hash"])[0] if row["codec"] == "zstd-delta" else None
        return unpack(row["data"], row["codec"], previous), row["content_type"]
