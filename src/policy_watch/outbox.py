"""The outbox: alerts are queued with the changes they report, then sent, each to each target once.

Rows move pending → sending → sent; digest targets' rows are held and merged into one message
per run. Before a send the row is marked 'sending' (committed), after it 'sent'. A failed send
goes back to pending with its error and a backoff, and the target is skipped for the rest of
the run. A row still 'sending' when delivery starts belongs to a process that died mid-send:
the target may have it, so it is resent marked as a possible repeat. That is the only way an
alert can reach a target twice.
"""

from __future__ import annotations

import logging
import shlex
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from policy_watch import render
from policy_watch.config import Config
from policy_watch.store import Alert, OutboxRow, OutboxStatus, Store

log = logging.getLogger(__name__)

RETRY_MAX = timedelta(hours=6)


def _message(row: OutboxRow) -> render.Message:
    return render.Message(
        row.title, row.body_markdown, row.body_html, row.body_text, row.level or render.INFO
    )


def _more(vendor: str) -> str:
    """Where a message cut to fit its target points for the rest."""
    if not vendor or vendor == "*":
        return "run `policy-watch changes`"
    return f"run `policy-watch changes --vendor {shlex.quote(vendor)}`"


def merge_digests(config: Config, store: Store, now: datetime, run_id: str) -> None:
    """Fold the held alerts of each digest target into one message for this run."""
    by_target: dict[str, list[OutboxRow]] = defaultdict(list)
    for row in store.outbox.rows((OutboxStatus.HELD,)):
        by_target[row.target].append(row)
    for target, rows in by_target.items():
        d = render.digest_message([_message(r) for r in rows], [r.vendor for r in rows])
        ids = ",".join(str(r.id) for r in rows)
        vendors = sorted({r.vendor for r in rows})
        vendor = vendors[0] if len(vendors) == 1 else "*"
        store.outbox.enqueue(
            [
                Alert(
                    target,
                    vendor,
                    "digest",
                    f"digest:{ids}",
                    d.title,
                    d.markdown,
                    d.html,
                    d.text,
                    level=d.level,
                )
            ],
            run_id,
            now,
        )
        store.outbox.merged([r.id for r in rows])


def backoff(config: Config, attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failures: doubling, at most RETRY_MAX."""
    base = timedelta(minutes=config.settings.alert_retry_minutes)
    return min(base * (1 << min(max(attempts - 1, 0), 20)), RETRY_MAX)


def deliver(
    config: Config, store: Store, now: Callable[[], datetime], *, down: set[str] | None = None
) -> tuple[int, int]:
    """Send every due alert. Returns (sent, still waiting). ``down``: targets not to try (a
    failed target is added to it; pass the same set to later calls of one run)."""
    targets = {t.name: t for t in config.notify}
    down = set() if down is None else down
    sent = 0
    for row in store.outbox.rows((OutboxStatus.PENDING, OutboxStatus.SENDING)):
        t0 = now()
        interrupted = row.status == OutboxStatus.SENDING
        if not interrupted and row.next_attempt_at and row.next_attempt_at > t0.isoformat():
            continue
        if row.target in down:
            continue
        target = targets.get(row.target)
        if target is None:
            store.outbox.unsendable(row.id, f"target {row.target!r} is no longer in the config")
            continue
        msg = _message(row)
        if interrupted:  # the process died after sending began: the target may have it already
            msg = render.possible_repeat(msg)
            store.outbox.rewrite(row.id, msg.title, msg.markdown, msg.html, msg.text)
        store.outbox.sending(row.id, t0)
        from policy_watch import (
            notify,  # apprise is slow to import: only when there is something to send
        )

        result = notify.send(target, msg, _more(row.vendor))
        attempts = row.attempts + 1
        if result.ok:
            store.outbox.sent(row.id, now(), attempts)
            sent += 1
            continue
        down.add(target.name)
        retry_at = t0 + backoff(config, attempts)
        log.warning(
            "alert %s to %s not delivered (attempt %d, next try after %s): %s",
            row.id,
            target.name,
            attempts,
            retry_at.isoformat(timespec="minutes"),
            result.error,
        )
        store.outbox.failed(row.id, attempts, result.error, retry_at)
    return sent, store.outbox.waiting()
