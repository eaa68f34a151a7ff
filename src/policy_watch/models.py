"""Typed values that flow between the pipeline stages."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of a vendor's subprocessor list."""

    section: str
    entity: str
    purpose: str = ""
    country: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def extra_dict(self) -> dict[str, str]:
        return dict(self.extra)

    def to_json(self) -> dict[str, object]:
        return {
            "section": self.section,
            "entity": self.entity,
            "purpose": self.purpose,
            "country": self.country,
            "extra": self.extra_dict,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Entry:
        extra = data.get("extra") or {}
        assert isinstance(extra, dict)
        return cls(
            section=str(data.get("section") or ""),
            entity=str(data["entity"]),
            purpose=str(data.get("purpose") or ""),
            country=str(data.get("country") or ""),
            extra=tuple((str(k), str(v)) for k, v in extra.items()),
        )


@dataclass(frozen=True, slots=True)
class Listing:
    """One vendor's current entry, as the views across vendors (``who``, ``entities``) read it."""

    vendor: str
    entity: str
    section: str = ""
    purpose: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """What the parser read from one page."""

    entries: tuple[Entry, ...]
    last_modified: date | None = None
    title: str = ""
    # Table headers per section, so the differ can tell a column added from a field change.
    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Parallel to ``columns`` (same sections, same order): each column's header as the page wrote
    # it, "" for a table without a header row.
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    reader: str = "html"  # which reader read it: "html", "embedded data", "pdf" (see parse.READERS)

    def to_json(self) -> dict[str, object]:
        return {
            "last_modified": self.last_modified.isoformat() if self.last_modified else None,
            "entries": [e.to_json() for e in self.entries],
        }


@dataclass(frozen=True, slots=True)
class ParseRules:
    """Per-vendor parser overrides from config.toml."""

    row: str | None = None  # CSS selector of one entry
    entity: str | None = None  # CSS selector inside a row
    purpose: str | None = None
    country: str | None = None
    section: str | None = None  # optional CSS selector of a section heading inside a row's ancestors
    date_format: str | None = None  # strptime format for ambiguous numeric dates


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    final_url: str
    status: int
    body: bytes
    content_type: str | None
    etag: str | None = None
    last_modified_header: str | None = None
    duration_ms: int = 0
    not_modified: bool = False
    challenge: bool = (
        False  # its headers say it is a bot challenge (only believed if no list is read from it)
    )


class ChangeKind(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    RENAMED = "renamed"
    COLUMN_ADDED = "column_added"
    COLUMN_REMOVED = "column_removed"


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    section: str
    entity: str
    field: str | None = None
    old: str | None = None
    new: str | None = None
    # What a reader cannot see: "name differs from 'Google LLC' by an invisible character".
    note: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kind": self.kind.value,
            "section": self.section,
            "entity": self.entity,
            "field": self.field,
            "old": self.old,
            "new": self.new,
        }
        if self.note:
            out["note"] = self.note
        return out


class VendorStatus(enum.StrEnum):
    """How checking one vendor in one run ended (``VendorResult.status``)."""

    BASELINE = "baseline"  # the first list read: the baseline later runs compare with
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    SUSPECT = "suspect"  # a reading held back: the last good snapshot stays the baseline
    ERROR = "error"  # no reading at all: fetch failed, page unreadable, nothing recorded

    @property
    def failed(self) -> bool:
        """Whether no new list was taken in: the one last read stays in force (shown as stale)."""
        return self in (VendorStatus.SUSPECT, VendorStatus.ERROR)


class SnapshotStatus(enum.StrEnum):
    """What a stored snapshot is to its vendor's history (``snapshots.status``)."""

    GOOD = "good"  # a reading taken as real: the latest good or accepted one is the baseline
    SUSPECT = "suspect"  # held back by the structure guard until the page recovers or is accepted
    SUPERSEDED = "superseded"  # a suspect reading a later reading replaced
    ACCEPTED = "accepted"  # a suspect reading a person confirmed as real


class WindowRule(enum.StrEnum):
    DECLARED = "declared_date"  # the page's declared update date moved forward
    DETECTED = "detection_date"


@dataclass(frozen=True, slots=True)
class ObjectionWindow:
    opens: date
    deadline: date
    rule: WindowRule

    def days_left(self, today: date) -> int:
        return (self.deadline - today).days


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision recorded on an objection window. Decisions are only ever added: the window's
    status is its latest one."""

    id: int
    window_id: int
    action: str  # "acknowledged" | "objected" | "accepted"
    by: str
    note: str | None
    at: datetime

    def to_json(self) -> dict[str, object]:
        return {"action": self.action, "by": self.by, "note": self.note, "at": self.at.isoformat()}


@dataclass(frozen=True, slots=True)
class VendorResult:
    """The outcome of checking one vendor in one run."""

    vendor: str
    status: VendorStatus
    changes: tuple[Change, ...] = ()
    window: ObjectionWindow | None = None
    error: str | None = None
    entries: int = 0
    detected_at: datetime | None = None
    notice: str | None = None  # something to tell about this vendor besides its status (a page read again)
