"""Vendors, their fetch log and the runs: who is watched, how each check went."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from policy_watch.models import SnapshotStatus
from policy_watch.store.part import Part, chunked
from policy_watch.store.records import VendorState
from policy_watch.store.rows import IS_BASELINE, FetchRecord, Freshness

# latest_status: of the latest page fetched (a later reading of an older page does not release a
# page held as suspect); latest_id: that page's snapshot while it is held, else the newest
# snapshot, a later reading included (what an unchanged page touches)
_VENDOR_ROWS = (
    "select v.*, l.id as latest_id, s.status as latest_status, l.entry_count as latest_entries"
    " from vendors v left join snapshots s on s.id ="
    " (select max(id) from snapshots where vendor_id = v.id and reading_of is null)"
    f" left join snapshots l on l.id = case when s.status = '{SnapshotStatus.SUSPECT.value}' then s.id"
    " else (select max(id) from snapshots where vendor_id = v.id) end"
    " where v.name in ({})"
)

# the columns ``update`` may set
_UPDATABLE = frozenset(
    {
        "etag",
        "last_modified_header",
        "body_hash",
        "consecutive_failures",
        "failing",
        "last_error",
        "reading_config",
    }
)


class Vendors(Part):
    """The watched vendors and their fetch log."""

    def state(self, name: str, url: str, now: datetime) -> VendorState:
        return self.states([(name, url)], now)[name]

    def states(self, vendors: Sequence[tuple[str, str]], now: datetime) -> dict[str, VendorState]:
        """Each vendor's stored state (created when new), read in one query. A vendor whose URL changed
        in the config starts without conditional-request headers."""
        conn = self._conn
        with self._store.transaction():
            rows = self._rows([name for name, _ in vendors])
            changed = False
            for name, url in vendors:
                row = rows.get(name)
                if row is not None and row["url"] == url:
                    continue
                changed = True
                if row is None:
                    conn.execute(
                        "insert into vendors (name, url, created_at, consecutive_failures, failing) values (?, ?, ?, 0, 0)",
                        [name, url, now.isoformat()],
                    )
                else:
                    # earlier fetches went to the old URL: write it out before the vendor's URL changes
                    conn.execute(
                        "update fetches set url = ? where vendor_id = ? and url is null",
                        [row["url"], row["id"]],
                    )
                    conn.execute(
                        "update vendors set url = ?, etag = null, last_modified_header = null where id = ?",
                        [url, row["id"]],
                    )
            if changed:  # read again: new ids, cleared validators
                rows = self._rows([name for name, _ in vendors])
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
                latest_status=None if r["latest_status"] is None else SnapshotStatus(r["latest_status"]),
                latest_entries=r["latest_entries"] or 0,
                reading_config=r["reading_config"],
            )
            for name, _ in vendors
            for r in (rows[name],)
        }

    def _rows(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Vendors by name, each with its latest snapshot's id, status and size."""
        return {r["name"]: r for r in chunked(self._conn, _VENDOR_ROWS, names)}

    def freshness(self) -> dict[str, Freshness]:
        """Per vendor name: whether its latest check failed to read its list (a fetch error or a page
        held as suspect), why, and when its list was last read."""
        rows = self._query(
            "select v.name, v.consecutive_failures, v.last_error,"
            " (select status from snapshots where vendor_id = v.id and reading_of is null order by id desc limit 1)"
            " as latest_status,"
            f" (select max(last_seen) from snapshots where vendor_id = v.id and {IS_BASELINE})"
            " as last_success from vendors v"
        )
        out = {}
        for r in rows:
            failed = bool(r["consecutive_failures"])
            held = r["latest_status"] == SnapshotStatus.SUSPECT
            why = (
                f"its latest check failed: {r['last_error']}"
                if failed
                else "its page is held as suspect (structure changed)"
                if held
                else None
            )
            out[r["name"]] = Freshness(stale=failed or held, last_success=r["last_success"], stale_reason=why)
        return out

    def current_body(self, vendor_id: int) -> str | None:
        """The hash of the vendor's latest raw page on record."""
        row = self._one("select body_hash from vendors where id = ?", [vendor_id])
        return None if row is None else row["body_hash"]

    def id_of(self, name: str) -> int | None:
        """The id of the vendor of that name, ignoring ASCII case."""
        row = self._one("select id from vendors where name = ? collate nocase", [name])
        return None if row is None else int(row["id"])

    def names(self) -> list[str]:
        """Every vendor's name, in name order ignoring ASCII case."""
        return [
            str(r[0]) for r in self._conn.execute("select name from vendors order by name collate nocase")
        ]

    def record_fetch(self, vendor_id: int, fetch: FetchRecord) -> None:
        """One row per attempt, kept small: the time as Unix seconds, ``final_url`` only when a
        redirect led elsewhere (the fetch_log view reads them)."""
        self._conn.execute(
            "insert into fetches (vendor_id, started_at, status, duration_ms, bytes, outcome, error, url, final_url)"
            " values (?, ?, ?, ?, ?, ?, ?, null, ?)",
            [
                vendor_id,
                int(fetch.started_at.timestamp()),
                fetch.status,
                fetch.duration_ms,
                fetch.bytes,
                fetch.outcome,
                fetch.error,
                fetch.final_url,
            ],
        )

    def update(self, vendor_id: int, **values: Any) -> None:
        """Set some of the vendor's columns: validators, body, failure count, reading fingerprint."""
        unknown = set(values) - _UPDATABLE
        if unknown:  # column names go into the statement: only known ones
            raise ValueError(f"not a vendor column this store updates: {', '.join(sorted(unknown))}")
        sets = ", ".join(f"{k} = ?" for k in values)
        self._conn.execute(f"update vendors set {sets} where id = ?", [*values.values(), vendor_id])


class Runs(Part):
    """One row per check of all vendors: when it ran and how it went (the daemon catches up from it)."""

    def record(
        self, run_id: str, started: datetime, finished: datetime, checked: int, failed: int, changed: int
    ) -> None:
        self._conn.execute(
            "insert or replace into runs (id, started_at, finished_at, checked, failed, changed)"
            " values (?, ?, ?, ?, ?, ?)",
            [run_id, started.isoformat(), finished.isoformat(), checked, failed, changed],
        )

    def last(self) -> datetime | None:
        row = self._one("select max(started_at) as last from runs")
        return datetime.fromisoformat(row["last"]) if row and row["last"] else None
