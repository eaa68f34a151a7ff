"""Read-side questions users ask of the history: what changed, what was listed when, what is due."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from policy_watch.errors import PolicyWatchError
from policy_watch.meaning.transfers import TransferRules, meaning_of
from policy_watch.models import Listing
from policy_watch.store import OutboxStatus, Store, WindowRow, WindowStatus
from policy_watch.store.reading import added_locations


def changes(store: Store, vendor: str | None = None, since: date | None = None) -> list[dict[str, Any]]:
    """The change log, newest first, as output rows (``with_transfers`` adds to them)."""
    return [
        {k: v for k, v in dataclasses.asdict(c).items() if k != "window_status"}
        for c in store.changes.log(vendor, since)
    ]


def require_vendor(store: Store, name: str) -> int:
    vid = store.vendors.id_of(name)
    if vid is None:
        known = ", ".join(sorted(store.vendors.names())) or "none yet"
        raise PolicyWatchError(f"no vendor named {name!r} in the database (known: {known})")
    return vid


def entries_at(
    store: Store, vendor: str, at: date | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The vendor's entries as they stood at the end of ``at`` (default: now)."""
    vid = require_vendor(store, vendor)
    snap = (
        store.snapshots.at(vid, f"{at.isoformat()}T23:59:59.999999+99:99")
        if at
        else store.snapshots.baseline(vid)
    )
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
    return {
        name: dataclasses.asdict(f)
        for name, f in store.vendors.freshness().items()
        if vendor is None or name.casefold() == vendor.casefold()
    }


def history(store: Store, vendor: str) -> list[dict[str, Any]]:
    return [dataclasses.asdict(s) for s in store.snapshots.summaries(require_vendor(store, vendor))]


def windows(
    store: Store, today: date, *, all_: bool = False, vendor: str | None = None
) -> list[dict[str, Any]]:
    """Objection windows, soonest deadline first, each with the entities it covers and its
    decisions (oldest first; the last one is its status)."""
    rows = [
        w for w in store.windows.rows(all_=all_) if vendor is None or w.vendor.casefold() == vendor.casefold()
    ]
    ids = [w.id for w in rows]
    decided = store.windows.decisions_of(ids)
    entities = store.windows.entities(ids)
    out = []
    for w in rows:
        left = (date.fromisoformat(w.deadline) - today).days
        if not all_ and left < 0:
            continue
        history = decided[w.id]
        last = history[-1] if history else None
        out.append(
            {
                "id": w.id,
                "vendor": w.vendor,
                "opens": w.opens,
                "deadline": w.deadline,
                "days_left": left,
                "rule": w.rule,
                "late": w.late,
                "status": w.status.value,
                "changes": w.change_count,
                "entities": entities[w.id],
                "detected_at": w.detected_at,
                "by": last.by if last else None,
                "note": last.note if last else None,
                "decisions": [d.to_json() for d in history],
            }
        )
    return out


WINDOW_STATUSES = {
    "ack": WindowStatus.ACKNOWLEDGED,
    "object": WindowStatus.OBJECTED,
    "accept": WindowStatus.ACCEPTED,
}


def set_window(
    store: Store, window_id: int, action: str, by: str, note: str | None, now: datetime
) -> WindowRow:
    """Add a decision to a window (earlier decisions stay on record); the window as it now stands."""
    store.windows.add_decision(window_id, WINDOW_STATUSES[action], by, note, now)
    updated = store.windows.get(window_id)
    assert updated is not None
    return updated


def current_entries(store: Store) -> list[dict[str, Any]]:
    return [dataclasses.asdict(e) for e in store.entries.current()]


def outbox(store: Store, all_: bool = False) -> list[dict[str, Any]]:
    statuses = [OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.HELD]
    if all_:
        statuses += [OutboxStatus.SENT, OutboxStatus.MERGED]
    return [
        {
            k: str(getattr(r, k)) if k == "status" else getattr(r, k)
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
        for r in store.outbox.rows(statuses)
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
    return store.entries.listings()
