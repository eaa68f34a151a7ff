"""The outbox: alerts are queued with the changes they report, then sent, each to each target once.

Rows move pending → (sending) → sent. A failed send stays pending with its error and a
backoff. A row found 'sending' at the start of delivery belongs to a process that died
mid-send: the target may have received it, so it is resent marked as a possible repeat.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from policy_watch import notify, render
from policy_watch.config import Config
from policy_watch.store import Alert, Store

RETRY_MAX = timedelta(hours=6)
REPEAT_NOTE = "[possible repeat] "


def merge_digests(config: Config, store: Store, now: datetime, run_id: str) -> None:
    """Fold held alerts of each digest target into one message per run."""
    held = store.outbox(("held",))
    by_target: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in held:
        by_target[str(row["target"])].append(row)
    for target, rows in by_target.items():
        msgs = [render.Message(str(r["title"]), str(r["body_markdown"]), str(r["body_html"]), str(r["body_text"]))
                for r in rows]  # fmt: skip
        d = render.digest_message(msgs)
        ids = ",".join(str(r["id"]) for r in rows)
        alert = Alert(target, "*", "digest", f"digest:{ids}", d.title, d.markdown, d.html, d.text)
        store.enqueue([alert], run_id, now)
        store.execute(f"update outbox set status = 'merged' where id in ({ids})")


def deliver(config: Config, store: Store, now: Callable[[], datetime]) -> tuple[int, int]:
    """Send every due alert. Returns (sent, still pending)."""
    targets = {t.name: t for t in config.notify}
    sent = 0
    for row in store.outbox(("pending", "sending")):
        t0 = now()
        due = row["next_attempt_at"] is None or row["next_attempt_at"] <= t0.isoformat()
        if row["status"] == "pending" and not due:
            continue
        target = targets.get(row["target"])
        if target is None:
            store.execute("update outbox set last_error = ? where id = ?",
                          [f"target {row['target']!r} is no longer in the config", row["id"]])  # fmt: skip
            continue
        title = row["title"]
        if row["status"] == "sending" and not title.startswith(REPEAT_NOTE):
            title = REPEAT_NOTE + title  # the process died after sending began: the target may have it
            store.execute("update outbox set title = ? where id = ?", [title, row["id"]])
        store.execute("update outbox set status = 'sending', sending_at = ? where id = ?", [t0.isoformat(), row["id"]])
        result = notify.send(target, title, row["body_markdown"], row["body_html"], row["body_text"])
        attempts = int(row["attempts"] or 0) + 1
        if result.ok:
            store.execute("update outbox set status = 'sent', sent_at = ?, attempts = ?, last_error = null where id = ?",
                          [now().isoformat(), attempts, row["id"]])  # fmt: skip
            sent += 1
        else:
            base = timedelta(minutes=config.settings.alert_retry_minutes)
            delay = min(base * (2 ** (attempts - 1)), RETRY_MAX)
            store.execute(
                "update outbox set status = 'pending', attempts = ?, last_error = ?, next_attempt_at = ? where id = ?",
                [attempts, result.error, (t0 + delay).isoformat(), row["id"]],
            )
    pending = len(store.outbox(("pending", "sending")))
    return sent, pending
