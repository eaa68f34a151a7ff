"""Operations on recorded history: accepting a suspect page, re-reading stored pages."""

from __future__ import annotations

import uuid
from datetime import datetime

from policy_watch.collect import parse_page
from policy_watch.config import Config, Vendor
from policy_watch.diff import diff_entries
from policy_watch.errors import ParseError, PolicyWatchError
from policy_watch.models import Change, ObjectionWindow, ParsedPage
from policy_watch.pipeline import _parser_version, record_changes
from policy_watch.store import Store, StoredSnapshot, content_hash


def accept_suspect(
    config: Config, store: Store, vendor: Vendor, now: datetime
) -> tuple[list[Change], ObjectionWindow | None]:
    """A person confirmed the suspect content is real: it becomes the baseline, and its changes are reported."""
    vid = store.vendor_id(vendor.name)
    latest = store.latest_snapshot(vid) if vid is not None else None
    if vid is None or latest is None or latest.status != "suspect":
        raise PolicyWatchError(f"{vendor.name}: no suspect snapshot waiting to be accepted")
    base = store.baseline(vid)
    run_id = uuid.uuid4().hex[:12]
    with store.transaction():
        store.set_snapshot_status(latest.id, "accepted")
        if base is None:
            return [], None
        changes = diff_entries(base.entries, latest.entries, base.columns, latest.columns,
                               old_headers=base.headers, new_headers=latest.headers)  # fmt: skip
        window = record_changes(config, store, vendor, latest.id, base, latest.page(), changes, now, run_id)
    return changes, window


def reparse_history(config: Config, store: Store, now: datetime) -> list[tuple[str, int, int]]:
    """Re-run today's parser over stored raw bodies; rebuild entries and change rows, send nothing.

    Returns (vendor, snapshots re-read, snapshots whose entries changed).
    """
    out = []
    rules = {v.name: v.rules for v in config.vendors}
    for vrow in store.query("select id, name from vendors order by name"):
        snaps = store.query("select id, body_hash, status from snapshots where vendor_id = ?"
                            " and body_hash is not null order by id", [vrow["id"]])  # fmt: skip
        redone = changed = 0
        with store.transaction():
            prev: StoredSnapshot | None = None
            for s in snaps:
                body, ctype = store.load_body(s["body_hash"])
                try:
                    page = parse_page(
                        body, content_type=ctype, rules=rules.get(vrow["name"]), source=vrow["name"]
                    )
                except ParseError:
                    page = ParsedPage(entries=())
                redone += 1
                if content_hash(page) != content_hash(store.snapshot(s["id"]).page()):
                    changed += 1
                    store.replace_entries(s["id"], page, _parser_version())
                snap = store.snapshot(s["id"])
                if s["status"] in ("good", "accepted"):
                    if prev is not None:
                        _rebuild_changes(store, prev, snap, now)
                    prev = snap
        out.append((vrow["name"], redone, changed))
    return out


def _rebuild_changes(store: Store, prev: StoredSnapshot, snap: StoredSnapshot, now: datetime) -> None:
    old_rows = store.query(
        "select window_id, detected_at from changes where snapshot_id = ? limit 1", [snap.id]
    )
    wid = old_rows[0]["window_id"] if old_rows else None
    detected = (
        datetime.fromisoformat(old_rows[0]["detected_at"])
        if old_rows
        else datetime.fromisoformat(snap.first_seen)
    )
    store.execute("delete from changes where snapshot_id = ?", [snap.id])
    changes = diff_entries(prev.entries, snap.entries, prev.columns, snap.columns,
                           old_headers=prev.headers, new_headers=snap.headers)  # fmt: skip
    store.insert_changes(snap.vendor_id, snap.id, prev.id, changes, [wid] * len(changes), detected)
