"""What each concern of the store shares: the store's one connection, and rows read from it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policy_watch.store import Store

CHUNK = 500  # ids or names bound in one statement (SQLite allows 999 in older builds)


def query(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows as dicts, straight from sqlite3 (sqlite-utils' query() adds a savepoint per call)."""
    cur = conn.execute(sql, list(params))
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
    rows = query(conn, sql, params)
    return rows[0] if rows else None


def chunked(
    conn: sqlite3.Connection, sql: str, values: Sequence[Any], params: Sequence[Any] = ()
) -> Iterator[dict[str, Any]]:
    """Rows of ``sql`` (whose ``{}`` takes the placeholders for ``values``, bound after ``params``),
    ``CHUNK`` values a statement."""
    items = list(values)
    for start in range(0, len(items), CHUNK):
        part = items[start : start + CHUNK]
        yield from query(conn, sql.format(",".join("?" * len(part))), [*params, *part])


class Part:
    """One concern of the store (vendors, snapshots, windows, the outbox...): its reads and writes,
    on the store's connection and so inside whatever transaction the store has open."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._store.db.conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return query(self._store.db.conn, sql, params)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        return one(self._store.db.conn, sql, params)
