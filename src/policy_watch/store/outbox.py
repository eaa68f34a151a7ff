"""The outbox: alerts queued in the transaction that records what they report, then sent.

Rows move pending → sending → sent; a digest target's rows are held, then merged into one
pending row per run. Every transition is a method here; the sending itself is not the store's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from policy_watch.store.part import CHUNK, Part
from policy_watch.store.records import Alert
from policy_watch.store.rows import WAITING, OutboxRow, OutboxStatus

_ENQUEUE = (
    "insert or ignore into outbox (created_at, run_id, target, vendor, kind, dedupe_key, title, body_markdown,"
    " body_html, body_text, level, status, attempts, next_attempt_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)"
)


class Outbox(Part):
    """Alerts waiting to be sent, being sent, sent, held for a digest or merged into one."""

    def enqueue(self, alerts: Sequence[Alert], run_id: str, now: datetime) -> None:
        """Queue alerts; an alert already queued for a target (same dedupe key) is not queued again."""
        at = now.isoformat()
        self._conn.executemany(
            _ENQUEUE,
            [
                (
                    at,
                    run_id,
                    a.target,
                    a.vendor,
                    a.kind,
                    a.dedupe_key,
                    a.title,
                    a.body_markdown,
                    a.body_html,
                    a.body_text,
                    a.level,
                    OutboxStatus.HELD.value if a.held else OutboxStatus.PENDING.value,
                    at,
                )
                for a in alerts
            ],
        )

    def rows(self, statuses: Sequence[OutboxStatus] = (OutboxStatus.PENDING,)) -> list[OutboxRow]:
        """Rows in any of ``statuses``, oldest first."""
        marks = ",".join("?" for _ in statuses)
        return [
            OutboxRow.from_row(r)
            for r in self._query(
                f"select * from outbox where status in ({marks}) order by id", [str(s) for s in statuses]
            )
        ]

    def waiting(self) -> int:
        """How many alerts are still to be sent (pending, or interrupted while sending)."""
        marks = ",".join("?" for _ in WAITING)
        return int(
            self._conn.execute(
                f"select count(*) from outbox where status in ({marks})", list(WAITING)
            ).fetchone()[0]
        )

    def merged(self, ids: Sequence[int]) -> None:
        """Held rows folded into a digest (queued as a row of its own)."""
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            marks = ",".join("?" for _ in part)
            self._conn.execute(
                f"update outbox set status = ? where id in ({marks})", [OutboxStatus.MERGED.value, *part]
            )

    def unsendable(self, row_id: int, error: str) -> None:
        """Left pending with the reason it cannot be sent now (its target left the config)."""
        self._conn.execute(
            "update outbox set status = ?, last_error = ? where id = ?",
            [OutboxStatus.PENDING.value, error, row_id],
        )

    def rewrite(self, row_id: int, title: str, markdown: str, html: str, text: str) -> None:
        """New wording of an alert not yet delivered (marked as a possible repeat)."""
        self._conn.execute(
            "update outbox set title = ?, body_markdown = ?, body_html = ?, body_text = ? where id = ?",
            [title, markdown, html, text, row_id],
        )

    def sending(self, row_id: int, at: datetime) -> None:
        """About to be sent: a row still 'sending' later belongs to a process that died mid-send."""
        self._conn.execute(
            "update outbox set status = ?, sending_at = ? where id = ?",
            [OutboxStatus.SENDING.value, at.isoformat(), row_id],
        )

    def sent(self, row_id: int, at: datetime, attempts: int) -> None:
        self._conn.execute(
            "update outbox set status = ?, sent_at = ?, attempts = ?, last_error = null where id = ?",
            [OutboxStatus.SENT.value, at.isoformat(), attempts, row_id],
        )

    def failed(self, row_id: int, attempts: int, error: str | None, retry_at: datetime) -> None:
        """Not delivered: pending again, tried after ``retry_at``."""
        self._conn.execute(
            "update outbox set status = ?, attempts = ?, last_error = ?, next_attempt_at = ? where id = ?",
            [OutboxStatus.PENDING.value, attempts, error, retry_at.isoformat(), row_id],
        )
