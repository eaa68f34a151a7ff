"""Who hears about what: routing alerts to targets, operator notices, deadline reminders.

Alerts are queued in the store (the outbox), in the caller's transaction; delivery is outbox's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from policy_watch import clock, render
from policy_watch.config import Config, NotifyTarget
from policy_watch.errors import FetchError
from policy_watch.render import Message
from policy_watch.store import Alert, Store, VendorState


def count_failure(
    config: Config, store: Store, state: VendorState, error: FetchError, at: datetime, run_id: str
) -> None:
    failures = state.consecutive_failures + 1
    failing = state.failing
    if not failing and failures >= config.settings.failure_threshold:
        failing = True
        msg = render.notice_message(
            f"{state.name}: failing for {failures} runs",
            [f"policy-watch could not check {state.name} {failures} times in a row.", f"Last error: {error.cause}",
             f"URL: {error.url}", "You will get one more message when it recovers."],
        )  # fmt: skip
        store.enqueue(operator_alerts(config.notify, state.name, "failure", f"failure:{state.id}:{at.isoformat()}", msg),
                      run_id, at)  # fmt: skip
    store.update_vendor(state.id, consecutive_failures=failures, failing=int(failing), last_error=error.cause)


def recovered(config: Config, store: Store, state: VendorState, at: datetime, run_id: str) -> None:
    if state.failing:
        msg = render.notice_message(f"{state.name}: recovered",
                                    [f"{state.name} is being checked normally again after "
                                     f"{state.consecutive_failures} failed runs."])  # fmt: skip
        store.enqueue(operator_alerts(config.notify, state.name, "failure", f"recovery:{state.id}:{at.isoformat()}", msg),
                      run_id, at)  # fmt: skip
    store.update_vendor(state.id, consecutive_failures=0, failing=0, last_error=None)


def _wants(t: NotifyTarget, vendor: str, kinds: Iterable[str]) -> bool:
    if t.vendors and vendor not in t.vendors:
        return False
    return not t.kinds or bool(set(t.kinds) & set(kinds))


def target_alerts(
    targets: Sequence[NotifyTarget], vendor: str, kind: str, key: str, msg: Message, kinds: Iterable[str]
) -> list[Alert]:
    kinds = set(kinds) | {kind}
    return [
        Alert(t.name, vendor, kind, key, msg.title, msg.markdown, msg.html, msg.text, held=t.digest)
        for t in targets
        if _wants(t, vendor, kinds)
    ]


def operator_alerts(
    targets: Sequence[NotifyTarget], vendor: str, kind: str, key: str, msg: Message
) -> list[Alert]:
    ops = [t for t in targets if t.operator] or [t for t in targets if not t.vendors or vendor in t.vendors]
    return [Alert(t.name, vendor, kind, key, msg.title, msg.markdown, msg.html, msg.text) for t in ops]


def queue_reminders(config: Config, store: Store, now: datetime, run_id: str) -> None:
    today = now.date()
    for w in store.windows():
        deadline = date.fromisoformat(w["deadline"])
        due = clock.reminders_due(
            deadline, today, config.settings.reminder_days, json.loads(w["reminders_sent"])
        )
        if not due or w["detected_at"][:10] == today.isoformat():
            if due:
                store.mark_reminders(w["id"], due)
            continue
        left = (deadline - today).days
        msg = render.notice_message(
            f"{w['vendor']}: {left} day{'s' if left != 1 else ''} left to object (deadline {deadline})",
            [f"Reminder: the objection window for {w['vendor']} closes on {deadline} ({left} days left).",
             f"It covers {w['change_count']} change(s) detected on {w['detected_at'][:10]}.",
             f"Page: {w['url']}", f"Record a decision with `policy-watch ack|object|accept {w['id']}`."],
        )  # fmt: skip
        alerts = target_alerts(config.notify, w["vendor"], "reminder", f"reminder:{w['id']}:{min(due)}", msg, ())
        store.enqueue(alerts, run_id, now)
        store.mark_reminders(w["id"], due)
