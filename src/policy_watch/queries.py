"""Read-side questions users ask of the history: what changed, what was listed when, what is due."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from policy_watch.errors import PolicyWatchError
from policy_watch.meaning.transfers import TransferRules, meaning_of
from policy_watch.models import Listing
from policy_watch.store import Store
from policy_watch.store.reading import added_locations


def changes(store: Store, vendor: str | None = None, since: date | None = None) -> list[dict[str, Any]]:
    sql = (
        "select c.id, v.name as vendor, c.kind, c.section, c.entity, c.field, c.old, c.new, c.detected_at,"
        " w.opens as window_opens, w.deadline from changes c join vendors v on v.id = c.vendor_id"
        " left join windows w on w.id = c.window_id where 1 = 1"
    )
    params: list[Any] = []
    if vendor:
        sql += " and v.name = ? collate nocase"
        params.append(vendor)
    if since:
        sql += " and c.detected_at >= ?"
        params.append(since.isoformat())
    return store.query(sql + " order by c.detected_at desc, c.id desc", params)


def require_vendor(store: Store, name: str) -> int:
    vid = store.vendor_id(name)
    if vid is None:
        known = (
            ", ".join(r["name"] for r in store.query("select name from vendors order by name")) or "none yet"
        )
        raise PolicyWatchError(f"no vendor named {name!r} in the database (known: {known})")
    return vid


def entries_at(
    store: Store, vendor: str, at: date | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The vendor's entries as they stood at the end of ``at`` (default: now)."""
    vid = require_vendor(store, vendor)
    snap = store.snapshot_at(vid, f"{at.isoformat()}T23:59:59.999999+99:99") if at else store.baseline(vid)
    if snap is None:
        return None, []
    meta = {
        "snapshot_id": snap.id,
        "first_seen": snap.first_seen,
        "last_seen": snap.last_seen,
        "declared_date": snap.declared_date.isoformat() if snap.declared_date else None,
    }
    return meta, [e.to_json() for e in snap.entries]


def freshness(store: Store, vendor: str | None = None) -> dict[str, dict[str, Any]]:
    """Per vendor name: ``stale`` (its latest check did not read its list), ``stale_reason`` and
    ``last_success`` (when its list was last read)."""
    every = store.freshness()
    if vendor is None:
        return every
    return {k: v for k, v in every.items() if k.casefold() == vendor.casefold()}


def history(store: Store, vendor: str) -> list[dict[str, Any]]:
    vid = require_vendor(store, vendor)
    return store.query(
        "select s.id, s.status, s.first_seen, s.last_seen, s.declared_date, s.entry_count as entries,"
        " (select count(*) from changes c where c.snapshot_id = s.id) as changes, s.parser_version, s.reading_of"
        " from snapshots s where s.vendor_id = ? order by s.id",
        [vid],
    )


def windows(
    store: Store, today: date, *, all_: bool = False, vendor: str | None = None
) -> list[dict[str, Any]]:
    """Objection windows, soonest deadline first, each with the entities it covers and its
    decisions (oldest first; the last one is its status)."""
    rows = [
        w for w in store.windows(all_=all_) if vendor is None or w["vendor"].casefold() == vendor.casefold()
    ]
    ids = [int(w["id"]) for w in rows]
    decided = store.decisions_of(ids)
    entities = store.window_entities(ids)
    out = []
    for w in rows:
        left = (date.fromisoformat(w["deadline"]) - today).days
        if not all_ and left < 0:
            continue
        history = decided[w["id"]]
        last = history[-1] if history else None
        out.append(
            {
                "id": w["id"],
                "vendor": w["vendor"],
                "opens": w["opens"],
                "deadline": w["deadline"],
                "days_left": left,
                "rule": w["rule"],
                "late": bool(w["late"]),
                "status": w["status"],
                "changes": w["change_count"],
                "entities": entities[w["id"]],
                "detected_at": w["detected_at"],
                "by": last.by if last else None,
                "note": last.note if last else None,
                "decisions": [d.to_json() for d in history],
            }
        )
    return out


WINDOW_STATUSES = {"ack": "acknowledged", "object": "objected", "accept": "accepted"}


def set_window(
    store: Store, window_id: int, action: str, by: str, note: str | None, now: datetime
) -> dict[str, Any]:
    """Add a decision to a window (earlier decisions stay on record); the window as it now stands."""
    store.add_decision(window_id, WINDOW_STATUSES[action], by, note, now)
    updated = store.window(window_id)
    assert updated is not None
    return updated


def current_entries(store: Store) -> list[dict[str, Any]]:
    rows = store.query("select * from current_entries")
    for r in rows:
        r["extra"] = json.loads(r["extra"] or "{}")
    return rows


def outbox(store: Store, all_: bool = False) -> list[dict[str, Any]]:
    statuses = ("pending", "sending", "held", "sent", "merged") if all_ else ("pending", "sending", "held")
    return [
        {
            k: r[k]
            for k in (
                "id",
                "created_at",
                "target",
                "vendor",
                "kind",
                "title",
                "status",
                "attempts",
                "last_error",
                "next_attempt_at",
                "sent_at",
            )
        }
        for r in store.outbox(statuses)
    ]


def with_transfers(
    store: Store, rows: list[dict[str, Any]], rules: TransferRules, *, text: bool = False
) -> None:
    """Add ``countries``, ``transfer_risk`` and ``location_unrecognised`` to change rows that add or
    change a location, read now from the stored values (the recorded history is not rewritten)."""
    located = added_locations(store, [r["id"] for r in rows if r["kind"] == "added"])
    for r in rows:
        m = meaning_of(r["kind"], r["field"], r["old"], r["new"], located.get(r["id"], ""), rules)
        fields: dict[str, object] = {}
        if m is not None:
            fields.update(m.to_text() if text else m.to_json())
        r.update({"countries": None, "transfer_risk": None, "location_unrecognised": None, **fields})


def listings(store: Store) -> list[Listing]:
    """Every vendor's current entries, as the cross-vendor views read them."""
    return [
        Listing(r["vendor"], r["entity"], r["section"] or "", r["purpose"] or "", r["country"] or "")
        for r in store.query("select vendor, entity, section, purpose, country from current_entries")
    ]
