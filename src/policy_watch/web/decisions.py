"""Decisions on objection windows, as the web form records and shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policy_watch import queries
from policy_watch.config import Config
from policy_watch.store import Store

# The form's actions, as the CLI names its commands, with what each records.
ACTIONS = {"ack": "Acknowledge", "object": "Object", "accept": "Accept"}


@dataclass(frozen=True, slots=True)
class DecisionView:
    action: str
    by: str
    note: str | None
    at: str


def record(config: Config, window_id: int, action: str, by: str, note: str | None, now: datetime) -> None:
    """One short write transaction, through the call the CLI's ack/object/accept commands make."""
    store = Store.open(config.settings.database, create=False)
    try:
        queries.set_window(store, window_id, action, by, note, now)
    finally:
        store.close()


def history(store: Store, window_id: int) -> list[DecisionView]:
    """The window's decisions, oldest first."""
    w = store.window(window_id)
    if w is None or not w.get("status_by"):
        return []
    return [DecisionView(action=w["status"], by=w["status_by"], note=w["note"], at=w["status_at"])]

