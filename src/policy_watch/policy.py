"""When a new reading of a vendor's page is believed. Pure: values in, a verdict out.

A reading that lost its list (the page could not be read, or most entities vanished at once
without the page visibly being edited) is held as *suspect*: the last good snapshot stays the
baseline and no change is reported, so a maintenance page or a redesign the parser cannot read
never turns into "every entity removed". A held reading alarms once per episode: a later reading
with other content replaces it quietly, the same content only confirms it. What is stored,
touched or queued for each verdict is ``record``'s business.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from policy_watch.diff import is_suspect
from policy_watch.models import Entry, SnapshotStatus


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading of a page as the rule sees it: its entries and content hash, or, when the
    page could not be read, why not (``unreadable``)."""

    entries: tuple[Entry, ...] = ()
    content_hash: str | None = None
    unreadable: str | None = None


@dataclass(frozen=True, slots=True)
class Suspicion:
    """Why a reading is held: the parser's reason it could not read the page, or how many of the
    baseline's entities (``of``) the reading lost."""

    unreadable: str | None = None
    lost: int = 0
    of: int = 0


class Verdict(enum.Enum):
    UNREADABLE = "unreadable"  # nothing read and no baseline to keep: an error for this run
    FIRST = "first"  # no baseline yet: this reading becomes it
    SAME = "same"  # reads as the baseline: nothing to record but that it was seen
    HOLD = "hold"  # held as suspect: the baseline stays
    NEW = "new"  # a new good snapshot: its differences from the baseline are the changes


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    suspicion: Suspicion | None = None  # set when the verdict is HOLD


def judge(baseline: Reading | None, reading: Reading, guard_ratio: float) -> Judgement:
    """What to do with a new reading of a page whose last good reading is ``baseline`` (None
    when there is none yet). ``guard_ratio`` is the share of entities that may vanish at once
    before the structure guard holds the reading (``diff.is_suspect``)."""
    if reading.unreadable is not None:
        if baseline is None:
            return Judgement(Verdict.UNREADABLE)
        return Judgement(Verdict.HOLD, Suspicion(unreadable=reading.unreadable))
    if baseline is None:
        return Judgement(Verdict.FIRST)
    if reading.content_hash == baseline.content_hash:
        return Judgement(Verdict.SAME)
    if is_suspect(baseline.entries, reading.entries, guard_ratio):
        return Judgement(Verdict.HOLD, lost_entities(baseline.entries, reading.entries))
    return Judgement(Verdict.NEW)


def lost_entities(old: Sequence[Entry], new: Sequence[Entry]) -> Suspicion:
    before = {e.entity for e in old}
    return Suspicion(lost=len(before - {e.entity for e in new}), of=len(before))


class Hold(enum.Enum):
    """How a reading the guard holds joins the vendor's history."""

    ALARM = "alarm"  # a new episode: store the reading as suspect and alarm the operators
    REPLACE = "replace"  # already held, other content: store the newest, supersede the last, no alarm
    CONFIRM = "confirm"  # already held, same content: only note that it was seen again


def hold(latest_status: SnapshotStatus | None, latest_hash: str | None, content_hash: str) -> Hold:
    """The step for a held reading with ``content_hash``, given the status and content hash of
    the vendor's latest snapshot (None when there is none)."""
    if latest_status != SnapshotStatus.SUSPECT:
        return Hold.ALARM
    return Hold.CONFIRM if latest_hash == content_hash else Hold.REPLACE
