"""The objection clock. Pure: dates in, dates out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from policy_watch.models import Change, ChangeKind, ObjectionWindow, WindowRule


def open_window(
    detected: date,
    objection_days: int,
    declared: date | None,
    previous_declared: date | None,
) -> ObjectionWindow:
    """When the window opens and closes.

    It opens on the page's declared update date when that date moved forward since the previous
    snapshot and is not after the detection date; otherwise on the detection date.
    """
    moved = declared is not None and (previous_declared is None or declared > previous_declared)
    if moved and declared is not None and declared <= detected:
        opens, rule = declared, WindowRule.DECLARED
    else:
        opens, rule = detected, WindowRule.DETECTED
    return ObjectionWindow(opens=opens, deadline=opens + timedelta(days=objection_days), rule=rule)


def opens_window(change: Change, kinds: Iterable[str], transfer_risk: bool = False) -> bool:
    """Whether a change opens an objection window under the configured kinds.

    A kind is a change kind ("added", "renamed", ...) or, for a changed field, the field name
    ("country", "purpose"); "changed" alone covers every field. "transfer" covers a change that
    sends data to a new place outside the EEA without full adequacy (``transfer_risk``).
    """
    wanted = set(kinds)
    if transfer_risk and "transfer" in wanted:
        return True
    if change.kind is ChangeKind.CHANGED:
        return "changed" in wanted or (change.field or "") in wanted
    return change.kind.value in wanted


def reminders_due(deadline: date, today: date, days_before: Sequence[int], sent: Iterable[int]) -> list[int]:
    """Reminder offsets (days before the deadline) that are due today and not yet sent.

    The caller sends one reminder for all of them and records them all, so a run that missed
    several days sends one reminder, not a burst.
    """
    left = (deadline - today).days
    if left < 0:
        return []
    done = set(sent)
    return sorted(d for d in days_before if left <= d and d not in done)
