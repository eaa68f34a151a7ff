"""Rows the store hands out, typed, and the statuses its rows move through. Pure: no database."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from policy_watch.models import SnapshotStatus


class OutboxStatus(enum.StrEnum):
    """Where an alert is on its way: pending → sending → sent; a digest target's alerts are held,
    then merged into one pending message per run."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    HELD = "held"
    MERGED = "merged"


class WindowStatus(enum.StrEnum):
    """An objection window's state: open until a decision (its latest is the status) or the deadline."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    OBJECTED = "objected"
    ACCEPTED = "accepted"
    EXPIRED = "expired"


DECISION_ACTIONS = (WindowStatus.ACKNOWLEDGED, WindowStatus.OBJECTED, WindowStatus.ACCEPTED)
WAITING = (OutboxStatus.PENDING, OutboxStatus.SENDING)  # alerts still to be sent
STILL_OPEN = (WindowStatus.OPEN, WindowStatus.ACKNOWLEDGED)  # windows that can still be decided or expire
BASELINE = (SnapshotStatus.GOOD, SnapshotStatus.ACCEPTED)  # snapshots that can be a baseline


def sql_in(column: str, statuses: tuple[enum.StrEnum, ...]) -> str:
    """``column in ('a', 'b')`` for statuses: SQL that names them from their enum, not by hand."""
    return "{} in ({})".format(column, ", ".join(f"'{s.value}'" for s in statuses))


IS_BASELINE = sql_in("status", BASELINE)  # a snapshot's row that can be a baseline, in SQL


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One queued alert for one target."""

    id: int
    created_at: str
    run_id: str | None
    target: str
    vendor: str
    kind: str
    dedupe_key: str
    title: str
    body_markdown: str
    body_html: str
    body_text: str
    status: OutboxStatus
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    sending_at: str | None
    sent_at: str | None
    level: str

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> OutboxRow:
        return cls(
            id=int(r["id"]),
            created_at=r["created_at"],
            run_id=r["run_id"],
            target=str(r["target"]),
            vendor=str(r["vendor"] or ""),
            kind=str(r["kind"] or ""),
            dedupe_key=str(r["dedupe_key"] or ""),
            title=str(r["title"] or ""),
            body_markdown=str(r["body_markdown"] or ""),
            body_html=str(r["body_html"] or ""),
            body_text=str(r["body_text"] or ""),
            status=OutboxStatus(r["status"]),
            attempts=int(r["attempts"] or 0),
            last_error=r["last_error"],
            next_attempt_at=r["next_attempt_at"],
            sending_at=r["sending_at"],
            sent_at=r["sent_at"],
            level=str(r["level"] or "info"),
        )


@dataclass(frozen=True, slots=True)
class WindowRow:
    """An objection window with its vendor's name and URL and the number of changes it covers."""

    id: int
    vendor_id: int
    vendor: str
    url: str
    snapshot_id: int
    detected_at: str
    opens: str
    deadline: str
    rule: str
    late: bool
    status: WindowStatus
    status_by: str | None
    status_at: str | None
    note: str | None
    reminders_sent: tuple[int, ...]  # days before the deadline a reminder went out
    change_count: int

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> WindowRow:
        return cls(
            id=int(r["id"]),
            vendor_id=int(r["vendor_id"]),
            vendor=str(r["vendor"]),
            url=str(r["url"]),
            snapshot_id=int(r["snapshot_id"]),
            detected_at=str(r["detected_at"]),
            opens=str(r["opens"]),
            deadline=str(r["deadline"]),
            rule=str(r["rule"]),
            late=bool(r["late"]),
            status=WindowStatus(r["status"]),
            status_by=r["status_by"],
            status_at=r["status_at"],
            note=r["note"],
            reminders_sent=tuple(json.loads(r["reminders_sent"] or "[]")),
            change_count=int(r["change_count"] or 0),
        )


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """A snapshot's row without its entries (cheap: what an unchanged page needs)."""

    id: int
    status: SnapshotStatus
    entry_count: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """One line of a vendor's history: a snapshot with its dates and counts."""

    id: int
    status: SnapshotStatus
    first_seen: str
    last_seen: str
    declared_date: str | None
    entries: int
    changes: int
    parser_version: str | None
    reading_of: int | None


@dataclass(frozen=True, slots=True)
class Freshness:
    """Whether a vendor's latest check failed to read its list (a fetch error or a page held as
    suspect), why, and when its list was last read."""

    stale: bool
    last_success: str | None
    stale_reason: str | None


@dataclass(frozen=True, slots=True)
class ChangeLogRow:
    """One recorded change as the ``change_log`` view shows it."""

    id: int
    vendor: str
    kind: str
    section: str
    entity: str
    field: str | None
    old: str | None
    new: str | None
    detected_at: str
    window_opens: str | None
    deadline: str | None
    window_status: WindowStatus | None


@dataclass(frozen=True, slots=True)
class CurrentEntry:
    """One entry of a vendor's current list (its last good snapshot), as ``current_entries`` shows it."""

    vendor: str
    section: str | None
    entity: str
    purpose: str | None
    country: str | None
    extra: dict[str, Any]
    snapshot_id: int
    first_seen: str
    last_seen: str
    declared_date: str | None


@dataclass(frozen=True, slots=True)
class NamesTodo:
    """The spellings ``entity_names`` lacks, and how far the rows are read once they are added."""

    rebuild: bool  # the rules changed: every spelling is read again
    spellings: list[str]
    upto: int  # the last row id the spellings were taken from
    mark: int | None  # how far the table was read before (None: never noted)

    @property
    def nothing(self) -> bool:
        return not self.rebuild and not self.spellings and self.mark == self.upto


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """One fetch attempt as the fetch log keeps it."""

    started_at: datetime
    outcome: str  # "baseline", "changed", "not_modified", "same_body", "error", ...
    status: int | None = None
    duration_ms: int | None = None
    bytes: int | None = None
    error: str | None = None
    final_url: str | None = None  # only when a redirect led elsewhere
