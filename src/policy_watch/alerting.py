"""Who hears about what: routing alerts to targets, operator notices, deadline reminders.

Alerts are queued in the store (the outbox), in the caller's transaction; delivery is outbox's job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from policy_watch import clock, render
from policy_watch.config import Config, NotifyTarget
from policy_watch.errors import FetchError
from policy_watch.render import Message
from policy_watch.store import Alert, Store, VendorState, WindowRow

MAX_NAMED = 10  # entities a reminder names per window; the rest are counted


def count_failure(
    config: Config, store: Store, state: VendorState, error: FetchError, at: datetime, run_id: str
) -> None:
    failures = state.consecutive_failures + 1
    failing = state.failing
    if not failing and failures >= config.settings.failure_threshold:
        failing = True
        msg = render.notice_message(
            f"{state.name}: failing for {failures} runs",
            [
                f"policy-watch could not check {state.name} {failures} times in a row.",
                f"Last error: {error.cause}",
                f"URL: {error.url}",
                "You will get one more message when it recovers.",
            ],
            level=render.FAILURE,
        )
        store.outbox.enqueue(
            operator_alerts(
                config.notify, state.name, "failure", f"failure:{state.id}:{at.isoformat()}", msg
            ),
            run_id,
            at,
        )
    store.vendors.update(
        state.id, consecutive_failures=failures, failing=int(failing), last_error=error.cause
    )


def recovered(config: Config, store: Store, state: VendorState, at: datetime, run_id: str) -> None:
    if state.failing:
        msg = render.notice_message(
            f"{state.name}: recovered",
            [f"{state.name} is being checked normally again after {state.consecutive_failures} failed runs."],
            level=render.SUCCESS,
        )
        store.outbox.enqueue(
            operator_alerts(
                config.notify, state.name, "failure", f"recovery:{state.id}:{at.isoformat()}", msg
            ),
            run_id,
            at,
        )
    store.vendors.update(state.id, consecutive_failures=0, failing=0, last_error=None)


def _wants(t: NotifyTarget, vendor: str, kinds: Iterable[str]) -> bool:
    if t.vendors and vendor not in t.vendors:
        return False
    return not t.kinds or bool(set(t.kinds) & set(kinds))


def target_alerts(
    targets: Sequence[NotifyTarget], vendor: str, kind: str, key: str, msg: Message, kinds: Iterable[str]
) -> list[Alert]:
    kinds = set(kinds) | {kind}
    return [
        Alert(
            t.name,
            vendor,
            kind,
            key,
            msg.title,
            msg.markdown,
            msg.html,
            msg.text,
            held=t.digest,
            level=msg.level,
        )
        for t in targets
        if _wants(t, vendor, kinds)
    ]


def operator_alerts(
    targets: Sequence[NotifyTarget], vendor: str, kind: str, key: str, msg: Message
) -> list[Alert]:
    """Alarms for operators; a message that gives no level of its own is an alarm (apprise ``failure``)."""
    level = render.FAILURE if msg.level == render.INFO else msg.level
    ops = [t for t in targets if t.operator] or [t for t in targets if not t.vendors or vendor in t.vendors]
    return [
        Alert(t.name, vendor, kind, key, msg.title, msg.markdown, msg.html, msg.text, level=level)
        for t in ops
    ]


def queue_reminders(config: Config, store: Store, now: datetime, run_id: str) -> None:
    """One reminder per vendor per day, covering every window of that vendor that is due today."""
    today = now.date()
    due_by_vendor: dict[str, list[WindowRow]] = defaultdict(list)
    for w in store.windows.rows():
        deadline = date.fromisoformat(w.deadline)
        due = clock.reminders_due(deadline, today, config.settings.reminder_days, w.reminders_sent)
        if not due:
            continue
        store.windows.mark_reminders(w.id, due)
        if w.detected_at[:10] != today.isoformat():  # a window opened today was just announced
            due_by_vendor[w.vendor].append(w)
    for vendor, windows in due_by_vendor.items():
        entities = store.windows.entities([w.id for w in windows])
        msg = _reminder(vendor, windows, entities, today)
        alerts = target_alerts(
            config.notify, vendor, "reminder", f"reminder:{vendor}:{today.isoformat()}", msg, ()
        )
        store.outbox.enqueue(alerts, run_id, now)


def _reminder(
    vendor: str, windows: Sequence[WindowRow], entities: dict[int, list[str]], today: date
) -> Message:
    first = min(date.fromisoformat(w.deadline) for w in windows)
    left = (first - today).days
    title = f"{vendor}: {render.days_text(left)} left to object (deadline {first})"
    lines = [
        f"Reminder: {'an objection window' if len(windows) == 1 else f'{len(windows)} objection windows'}"
        f" for {vendor} {'closes' if len(windows) == 1 else 'close'} soon.",
        "",
    ]
    for w in windows:
        deadline = date.fromisoformat(w.deadline)
        names = entities.get(w.id, [])
        shown = ", ".join(names[:MAX_NAMED]) + (
            f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
        )
        lines.append(
            f"{render.BULLET_TEXT}Window {w.id}: object by {deadline} "
            f"({render.days_text((deadline - today).days)} left); changes detected on {w.detected_at[:10]}"
            + (f" to {shown}" if shown else "")
        )
    which = str(windows[0].id) if len(windows) == 1 else "ID"
    lines += [
        "",
        f"Page: {windows[0].url}",
        f"Record a decision with `policy-watch ack|object|accept {which}` (see `policy-watch deadlines`).",
    ]
    return render.notice_message(title, lines)
