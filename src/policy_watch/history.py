"""Operations on recorded history: accepting a suspect page, reading stored pages again."""

from __future__ import annotations

from datetime import datetime

from policy_watch.config import Config, Vendor
from policy_watch.diff import diff_pages
from policy_watch.errors import PolicyWatchError
from policy_watch.models import Change, ObjectionWindow, SnapshotStatus
from policy_watch.record import Run, record_changes, reread_baseline
from policy_watch.store import Store


def accept_suspect(
    config: Config, store: Store, vendor: Vendor, now: datetime
) -> tuple[list[Change], ObjectionWindow | None]:
    """A person confirmed the suspect content is real: it becomes the baseline, and its changes are reported."""
    vid = store.vendors.id_of(vendor.name)
    latest = store.snapshots.latest(vid) if vid is not None else None
    if vid is None or latest is None or latest.status != SnapshotStatus.SUSPECT:
        raise PolicyWatchError(f"{vendor.name}: no suspect snapshot waiting to be accepted")
    base = store.snapshots.baseline(vid)
    run = Run(config, store, now=lambda: now)
    with store.transaction():
        store.snapshots.set_status(latest.id, SnapshotStatus.ACCEPTED)
        if base is None:
            return [], None
        page = latest.page()
        changes = diff_pages(base.page(), page)
        window = record_changes(run, vendor, latest.id, base, page, changes, now)
    return changes, window


def reparse_history(config: Config, store: Store, now: datetime) -> list[tuple[str, str]]:
    """Read each configured vendor's current list again from its stored raw page, with today's
    parser and parse rules; send nothing.

    What was recorded stays as it was: snapshots, changes, windows, alerts and decisions. A
    reading that differs is added as a new snapshot of the same raw page (``reading_of``) and
    becomes the baseline later runs compare with; a reading the structure guard refuses is not
    kept. The vendor's page is then read again on its next run too (its newest page may be a
    held suspect one). Returns (vendor, what happened) per vendor on record.
    """
    out = []
    run = Run(config, store, now=lambda: now)
    for v in config.vendors:
        vid = store.vendors.id_of(v.name)
        if vid is None:
            continue
        with store.transaction():
            notice = reread_baseline(run, v, vid, now, store.vendors.current_body(vid))
            store.vendors.update(vid, reading_config=None)  # the next run reads its current page again
        if notice is None:
            base = store.snapshots.baseline(vid)
            notice = (
                f"{v.name}: reads as recorded ({len(base.entries)} entries)"
                if base is not None
                else f"{v.name}: no list on record yet"
            )
        out.append((v.name, notice))
    return out
