"""Reads for the review page: a read-only connection, and the questions its pages ask.

The web application opens the database read-only (it never takes the write lock a run needs,
and a run never waits for it); only a recorded decision opens a writing ``Store`` for one short
transaction. Every function here returns frozen values, not rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from policy_watch.models import Listing, SnapshotStatus
from policy_watch.store import Store
from policy_watch.store.database import connect_read_only
from policy_watch.store.part import chunked, query
from policy_watch.store.rows import IS_BASELINE, STILL_OPEN, sql_in


def open_readonly(path: Path) -> Store:
    """The database for reading only: no migration, no write, never a writer's lock."""
    return Store(connect_read_only(path), path)


# --- vendors ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VendorSummary:
    id: int
    name: str
    url: str
    failing: bool
    consecutive_failures: int
    last_error: str | None
    last_check: str | None  # ISO time of the latest fetch attempt
    last_success: str | None  # ISO time of the latest fetch that read the page
    entries: int | None  # in the current (last good) snapshot
    suspect: bool  # the latest page is held as suspect
    open_windows: int
    content_type: str | None  # of the latest raw page on record

    @property
    def status(self) -> str:
        if self.last_check is None:
            return "not checked"
        if self.consecutive_failures or self.failing:
            return "failing" if self.failing else "error"
        return "suspect" if self.suspect else "ok"

    @property
    def stale(self) -> bool:
        """Its latest check failed: the list shown is the last good one."""
        return self.status != "ok"

    @property
    def reader(self) -> str:
        kind = (self.content_type or "").lower()
        if "pdf" in kind:
            return "PDF"
        if "html" in kind or "xml" in kind:
            return "HTML"
        return kind.split(";")[0] or "—"


def vendor_summaries(
    store: Store, today: date, vendor_id: int | None = None, *, troubled: bool = False
) -> list[VendorSummary]:
    """Every vendor (or one) with its state, in name order.

    Each successful check touches a snapshot (``last_seen``), so the snapshots, read through their
    per-vendor index, tell when a vendor was last checked and last read well. Only a vendor whose
    latest check failed needs its fetch log, read backwards from the newest attempt: the log has
    a row per vendor per run and no index by vendor, and one pass over a year of it takes longer
    than a page may.
    """
    where, params = ("where v.id = ?", [vendor_id]) if vendor_id is not None else ("", [])
    if troubled:  # only those whose latest check failed, held a suspect page, or never read a list
        where = f"where v.consecutive_failures > 0 or v.failing or l.id is null or l.status = '{SnapshotStatus.SUSPECT.value}'"
    # one pass over the snapshots (a handful per vendor), not four look-ups per vendor
    rows = query(
        store.db.conn,
        "with per_vendor as (select vendor_id, max(case when reading_of is null then id end) as latest_id,"
        " max(last_seen) as last_read,"
        f" max(case when {IS_BASELINE} then id end) as good_id,"
        f" max(case when {IS_BASELINE} then last_seen end) as last_success"
        f" from snapshots {'where vendor_id = ?' if vendor_id is not None else ''} group by vendor_id)"
        " select v.id, v.name, v.url, v.failing, v.consecutive_failures, v.last_error, b.content_type,"
        " g.entry_count as entries, p.last_success, p.last_read, l.status as latest_status"
        " from vendors v left join per_vendor p on p.vendor_id = v.id left join snapshots g on g.id = p.good_id"
        f" left join snapshots l on l.id = p.latest_id left join bodies b on b.hash = v.body_hash {where}"
        " order by v.name collate nocase",
        params * 2,  # the vendor, in the snapshots read and in the vendors shown
    )
    windows = dict(
        (r["vendor_id"], r["n"])
        for r in query(
            store.db.conn,
            f"select vendor_id, count(*) as n from windows where {sql_in('status', STILL_OPEN)}"
            " and deadline >= ? group by vendor_id",
            [today.isoformat()],
        )
    )
    out = []
    for r in rows:
        last_check = r["last_read"]
        if r["consecutive_failures"] or last_check is None:
            last_check = _last_attempt(store, r["id"]) or last_check
        out.append(
            VendorSummary(
                id=r["id"],
                name=r["name"],
                url=r["url"],
                failing=bool(r["failing"]),
                consecutive_failures=r["consecutive_failures"] or 0,
                last_error=r["last_error"],
                last_check=last_check,
                last_success=r["last_success"],
                entries=r["entries"],
                suspect=r["latest_status"] == SnapshotStatus.SUSPECT,
                open_windows=windows.get(r["id"], 0),
                content_type=r["content_type"],
            )
        )
    return out


def _last_attempt(store: Store, vendor_id: int) -> str | None:
    """The vendor's newest fetch attempt, found by reading the log from its end."""
    rows = query(
        store.db.conn,
        "select started_at from fetches where vendor_id = ? order by id desc limit 1",
        [vendor_id],
    )
    return _unix_iso(rows[0]["started_at"]) if rows else None


def _unix_iso(value: Any) -> str | None:
    """Fetch times are stored as Unix seconds (older databases: ISO text)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        from datetime import UTC, datetime

        return datetime.fromtimestamp(value, UTC).isoformat()
    return str(value)


# --- changes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeRow:
    id: int
    vendor_id: int
    vendor: str
    snapshot_id: int
    previous_snapshot_id: int | None
    window_id: int | None
    kind: str
    section: str
    entity: str
    field: str | None
    old: str | None
    new: str | None
    detected_at: str
    deadline: str | None


@dataclass(frozen=True, slots=True)
class ChangeFilter:
    vendor: str | None = None
    kind: str | None = None  # a change kind, or a changed field ("country", "purpose")
    since: date | None = None
    until: date | None = None

    def where(self) -> tuple[str, list[Any]]:
        sql, params = [], []
        if self.vendor:
            sql.append("v.name = ? collate nocase")
            params.append(self.vendor)
        if self.kind:
            sql.append("(c.kind = ? or (c.kind = 'changed' and c.field = ?))")
            params += [self.kind, self.kind]
        if self.since:
            sql.append("c.detected_at >= ?")
            params.append(self.since.isoformat())
        if self.until:
            sql.append("c.detected_at < ?")
            params.append(date.fromordinal(self.until.toordinal() + 1).isoformat())
        return (" where " + " and ".join(sql)) if sql else "", params


_CHANGE_COLUMNS = (
    "c.id, c.vendor_id, v.name as vendor, c.snapshot_id, c.previous_snapshot_id, c.window_id, c.kind, c.section,"
    " c.entity, c.field, c.old, c.new, c.detected_at, w.deadline"
)
_CHANGE_JOINS = (
    " from changes c join vendors v on v.id = c.vendor_id left join windows w on w.id = c.window_id"
)


def _change(r: dict[str, Any]) -> ChangeRow:
    return ChangeRow(**{k: r[k] for k in ChangeRow.__slots__})


def changes(store: Store, filters: ChangeFilter, limit: int, offset: int = 0) -> list[ChangeRow]:
    """Changes newest first, filtered; ``limit`` + 1 rows tell the caller there is a next page."""
    where, params = filters.where()
    rows = query(
        store.db.conn,
        f"select {_CHANGE_COLUMNS}{_CHANGE_JOINS}{where}"
        " order by c.detected_at desc, c.id desc limit ? offset ?",
        [*params, limit, offset],
    )
    return [_change(r) for r in rows]


def window_changes(store: Store, window_id: int) -> list[ChangeRow]:
    rows = query(
        store.db.conn,
        f"select {_CHANGE_COLUMNS}{_CHANGE_JOINS} where c.window_id = ? order by c.id",
        [window_id],
    )
    return [_change(r) for r in rows]


def change_sets(store: Store, vendor_id: int | None, limit: int) -> list[list[ChangeRow]]:
    """The latest ``limit`` sets of changes (one per new snapshot), newest first: a feed's entries."""
    where, params = ("where vendor_id = ?", [vendor_id]) if vendor_id is not None else ("", [])
    ids = [
        r["snapshot_id"]
        for r in query(
            store.db.conn,
            f"select snapshot_id, max(detected_at) as at from changes {where} group by snapshot_id"
            " order by at desc, snapshot_id desc limit ?",
            [*params, limit],
        )
    ]
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    rows = query(
        store.db.conn,
        f"select {_CHANGE_COLUMNS}{_CHANGE_JOINS} where c.snapshot_id in ({marks}) order by c.id",
        ids,
    )
    by_snapshot: dict[int, list[ChangeRow]] = {i: [] for i in ids}
    for r in rows:
        by_snapshot[r["snapshot_id"]].append(_change(r))
    return [by_snapshot[i] for i in ids]


# --- snapshots and evidence ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """The raw page a snapshot was read from."""

    snapshot_id: int
    vendor_id: int
    body_hash: str
    content_type: str | None
    size: int
    first_seen: str


def evidence(store: Store, snapshot_id: int) -> Evidence | None:
    rows = query(
        store.db.conn,
        "select s.id, s.vendor_id, s.body_hash, s.first_seen, b.content_type, b.size from snapshots s"
        " join bodies b on b.hash = s.body_hash where s.id = ?",
        [snapshot_id],
    )
    if not rows:
        return None
    r = rows[0]
    return Evidence(
        snapshot_id=r["id"],
        vendor_id=r["vendor_id"],
        body_hash=r["body_hash"],
        content_type=r["content_type"],
        size=r["size"] or 0,
        first_seen=r["first_seen"],
    )


def snapshot_vendor(store: Store, snapshot_id: int) -> int | None:
    rows = query(store.db.conn, "select vendor_id from snapshots where id = ?", [snapshot_id])
    return int(rows[0]["vendor_id"]) if rows else None


# --- entities ------------------------------------------------------------------------------------------


def listings(store: Store, names: Sequence[str], *, exact: bool = False) -> list[Listing]:
    """Current entries whose entity is one of ``names`` (ignoring ASCII case unless ``exact``), by vendor."""
    out: list[Listing] = []
    found = list(dict.fromkeys(names))
    collate = "" if exact else " collate nocase"
    for start in range(0, len(found), 500):
        chunk = found[start : start + 500]
        marks = ",".join("?" * len(chunk))
        out += [
            Listing(r["vendor"], r["entity"], r["section"] or "", r["purpose"] or "", r["country"] or "")
            for r in query(
                store.db.conn,
                "select vendor, entity, section, purpose, country from current_entries"
                f" where entity{collate} in ({marks})",
                chunk,
            )
        ]
    return sorted(out, key=lambda x: (x.vendor.casefold(), x.entity))


def added_locations(store: Store, change_ids: Sequence[int]) -> dict[int, str]:
    """Change id -> the location cell(s) of the entry an ``added`` change added, in its snapshot."""
    sql = (
        "select c.id, group_concat(e.country, char(10)) as location from changes c join entries e"
        " on e.snapshot_id = c.snapshot_id and e.section = c.section and e.entity = c.entity"
        " where c.id in ({}) and c.kind = 'added' group by c.id"
    )
    return {r["id"]: r["location"] or "" for r in chunked(store.db.conn, sql, change_ids)}


ChangeKey = tuple[
    int, int, str, "str | None", str
]  # id, snapshot, kind, field, entity: a stored change's identity


def change_key(c: ChangeRow) -> ChangeKey:
    return (c.id, c.snapshot_id, c.kind, c.field, c.entity)


def located_change_keys(store: Store, filters: ChangeFilter) -> list[ChangeKey]:
    """The keys of every change (newest first) that adds an entry or changes its location: the ones
    a transfer risk can come from. Keys only: a year of them is read in a few milliseconds."""
    where, params = filters.where()
    where = (
        where + " and" if where else " where"
    ) + " (c.kind = 'added' or (c.kind = 'changed' and c.field = 'country'))"
    rows = store.db.conn.execute(
        f"select c.id, c.snapshot_id, c.kind, c.field, c.entity{_CHANGE_JOINS}{where}"
        " order by c.detected_at desc, c.id desc",
        params,
    ).fetchall()
    return [tuple(r) for r in rows]


def changes_by_id(store: Store, ids: Sequence[int]) -> list[ChangeRow]:
    """Changes in the order of ``ids``."""
    sql = f"select {_CHANGE_COLUMNS}{_CHANGE_JOINS} where c.id in ({{}})"
    found = {r["id"]: _change(r) for r in chunked(store.db.conn, sql, ids)}
    return [found[i] for i in ids if i in found]


def changes_of_windows(store: Store, window_ids: Sequence[int]) -> dict[int, list[ChangeRow]]:
    """Each window's changes, in the order recorded."""
    out: dict[int, list[ChangeRow]] = {i: [] for i in window_ids}
    sql = f"select {_CHANGE_COLUMNS}{_CHANGE_JOINS} where c.window_id in ({{}}) order by c.id"
    for r in chunked(store.db.conn, sql, window_ids):
        out[r["window_id"]].append(_change(r))
    return out


def row_entities_after(store: Store, row_id: int) -> tuple[int, list[str]]:
    """Entity names of the rows stored after ``row_id`` (rows are only ever added), and the last row id."""
    rows = store.db.conn.execute("select id, entity from rows where id > ? order by id", [row_id]).fetchall()
    return (rows[-1][0] if rows else row_id), [r[1] for r in rows]


def row_entities_containing(store: Store, text: str) -> list[str]:
    """Entity names of any row (current or not) that contain ``text``, ignoring ASCII case."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = store.db.conn.execute(
        "select distinct entity from rows where entity like ? escape '\\'", [pattern]
    )
    return [r[0] for r in rows.fetchall()]
