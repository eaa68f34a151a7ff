"""Objection windows, the changes they cover, and the decisions recorded on them (only ever added)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from policy_watch.errors import NotFoundError, StoreError
from policy_watch.models import Change, Decision, ObjectionWindow
from policy_watch.store.part import Part, chunked
from policy_watch.store.rows import (
    DECISION_ACTIONS,
    STILL_OPEN,
    ChangeLogRow,
    WindowRow,
    WindowStatus,
    sql_in,
)

_WINDOW_ROWS = (
    "select w.*, v.name as vendor, v.url as url,"
    " (select count(*) from changes c where c.window_id = w.id) as change_count"
    " from windows w join vendors v on v.id = w.vendor_id"
)
_STILL_OPEN_SQL = sql_in("w.status", STILL_OPEN)


def _decision(r: dict[str, Any]) -> Decision:
    return Decision(
        id=r["id"],
        window_id=r["window_id"],
        action=r["action"],
        by=r["by"],
        note=r["note"],
        at=datetime.fromisoformat(r["at"]),
    )


class Windows(Part):
    """Objection windows and the decisions on them."""

    def insert(self, vendor_id: int, snapshot_id: int, window: ObjectionWindow, now: datetime) -> int:
        cur = self._conn.execute(
            "insert into windows (vendor_id, snapshot_id, detected_at, opens, deadline, rule, late, status,"
            " reminders_sent) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                vendor_id,
                snapshot_id,
                now.isoformat(),
                window.opens.isoformat(),
                window.deadline.isoformat(),
                window.rule.value,
                int(window.deadline < now.date()),
                WindowStatus.OPEN.value,
                "[]",
            ],
        )
        return int(cur.lastrowid or 0)

    def get(self, window_id: int) -> WindowRow | None:
        row = self._one(f"{_WINDOW_ROWS} where w.id = ?", [window_id])
        return None if row is None else WindowRow.from_row(row)

    def rows(self, *, all_: bool = False) -> list[WindowRow]:
        """Windows still open or acknowledged (``all_``: every one), soonest deadline first."""
        where = "" if all_ else f" where {_STILL_OPEN_SQL}"
        return [
            WindowRow.from_row(r) for r in self._query(f"{_WINDOW_ROWS}{where} order by w.deadline, w.id")
        ]

    def _require(self, window_id: int) -> None:
        if self._one("select id from windows where id = ?", [window_id]) is None:
            raise NotFoundError(f"no objection window with id {window_id}")

    def add_decision(self, window_id: int, action: str, by: str, note: str | None, at: datetime) -> Decision:
        """Record one more decision on a window (earlier ones stay as they are); it becomes the
        window's status. Raises NotFoundError for a window that does not exist."""
        if action not in DECISION_ACTIONS:
            raise StoreError(
                str(self._store.path), f"unknown decision {action!r} (one of {', '.join(DECISION_ACTIONS)})"
            )
        with self._store.transaction():
            self._require(window_id)
            cur = self._conn.execute(
                "insert into decisions (window_id, action, by, note, at) values (?, ?, ?, ?, ?)",
                [window_id, str(action), by, note, at.isoformat()],
            )
            # the window row keeps the latest decision, for queries and the views
            self._conn.execute(
                "update windows set status = ?, status_by = ?, status_at = ?, note = ? where id = ?",
                [str(action), by, at.isoformat(), note, window_id],
            )
        return Decision(int(cur.lastrowid or 0), window_id, str(action), by, note, at)

    def decisions(self, window_id: int) -> list[Decision]:
        """Every decision on a window, oldest first. Raises NotFoundError for a window that does not exist."""
        self._require(window_id)
        return [
            _decision(r)
            for r in self._query("select * from decisions where window_id = ? order by id", [window_id])
        ]

    def decisions_of(self, window_ids: Sequence[int]) -> dict[int, list[Decision]]:
        """Decisions of many windows at once, each list oldest first."""
        out: dict[int, list[Decision]] = {w: [] for w in window_ids}
        for r in chunked(
            self._conn, "select * from decisions where window_id in ({}) order by id", window_ids
        ):
            out[r["window_id"]].append(_decision(r))
        return out

    def entities(self, window_ids: Sequence[int]) -> dict[int, list[str]]:
        """The entities (or, for a section's change, its name) each window covers, in the order recorded."""
        out: dict[int, list[str]] = {w: [] for w in window_ids}
        sql = "select window_id, coalesce(nullif(entity, ''), new) as name from changes where window_id in ({}) order by id"
        for r in chunked(self._conn, sql, window_ids):
            names = out[int(r["window_id"])]
            if r["name"] and r["name"] not in names:
                names.append(r["name"])
        return out

    def expire(self, today: date) -> int:
        """Windows past their deadline with no objection or acceptance become expired."""
        marks = ", ".join("?" * len(STILL_OPEN))
        cur = self._conn.execute(
            f"update windows set status = ? where status in ({marks}) and deadline < ?",
            [WindowStatus.EXPIRED.value, *STILL_OPEN, today.isoformat()],
        )
        return int(cur.rowcount)

    def mark_reminders(self, window_id: int, offsets: Sequence[int]) -> None:
        """Reminders went out ``offsets`` days before the deadline (added to those sent before)."""
        row = self._one("select reminders_sent from windows where id = ?", [window_id])
        sent = set(json.loads(row["reminders_sent"] or "[]")) if row else set()
        self._conn.execute(
            "update windows set reminders_sent = ? where id = ?",
            [json.dumps(sorted(sent | set(offsets))), window_id],
        )


class Changes(Part):
    """Entity changes, each recorded once with the snapshot it was found in (and its window)."""

    def insert(
        self,
        vendor_id: int,
        snapshot_id: int,
        previous_id: int | None,
        changes: Sequence[Change],
        window_ids: Sequence[int | None],
        now: datetime,
    ) -> None:
        at = now.isoformat()
        self._conn.executemany(
            "insert into changes (vendor_id, snapshot_id, previous_snapshot_id, window_id, kind, section,"
            " entity, field, old, new, detected_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    vendor_id,
                    snapshot_id,
                    previous_id,
                    wid,
                    c.kind.value,
                    c.section,
                    c.entity,
                    c.field,
                    c.old,
                    c.new,
                    at,
                )
                for c, wid in zip(changes, window_ids, strict=True)
            ],
        )

    def log(self, vendor: str | None = None, since: date | None = None) -> list[ChangeLogRow]:
        """The change log (the ``change_log`` view), newest first: of one vendor (ignoring ASCII
        case), detected on or after ``since``."""
        where: list[str] = []
        params: list[str] = []
        if vendor:
            where.append("vendor = ? collate nocase")
            params.append(vendor)
        if since:
            where.append("detected_at >= ?")
            params.append(since.isoformat())
        sql = (
            "select id, vendor, kind, section, entity, field, old, new, detected_at, window_opens, deadline,"
            " window_status from change_log" + (" where " + " and ".join(where) if where else "")
        )
        rows = self._query(sql + " order by detected_at desc, id desc", params)
        for r in rows:
            r["window_status"] = None if r["window_status"] is None else WindowStatus(r["window_status"])
        return [ChangeLogRow(**r) for r in rows]
