"""Operations on recorded history: accepting a suspect page, re-reading stored pages."""

from __future__ import annotations

import uuid
from datetime import datetime

from policy_watch.config import Config, Vendor
from policy_watch.diff import diff_pages
from policy_watch.errors import ParseError, PolicyWatchError
from policy_watch.models import Change, ObjectionWindow, ParsedPage
from policy_watch.parse import PARSER_VERSION, parse_page
from policy_watch.pipeline import record_changes
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
        page = latest.page()
        changes = diff_pages(base.page(), page)
        window = record_changes(config, store, vendor, latest.id, base, page, changes, now, run_id)
    return changes, window


def reparse_history(config: Config, store: Store) -> list[tuple[str, int, int]]:
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
                snap = store.snapshot(s["id"])
                if content_hash(page) != content_hash(snap.page()):  # both hashed by this version
                    changed += 1
                    store.replace_entries(s["id"], page, PARSER_VERSION)
                    snap = store.snapshot(s["id"])
                if s["status"] in ("good", "accepted"):
                    if prev is not None:
                        _rebuild_changes(store, prev, snap)
                    prev = snap
        out.append((vrow["name"], redone, changed))
    return out


def _rebuild_changes(store: Store, prev: StoredSnapshot, snap: StoredSnapshot) -> None:
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
    changes = diff_pages(prev.page(), snap.page())
    store.insert_changes(snap.vendor_id, snap.id, prev.id, changes, [wid] * len(changes), detected)
