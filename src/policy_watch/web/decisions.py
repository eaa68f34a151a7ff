"""Decisions on objection windows, as the web form records and shows them: the same append-only
history (``store.windows.add_decision``, ``store.windows.decisions``) the CLI's ack/object/accept commands use."""

from __future__ import annotations

from datetime import datetime

from policy_watch.config import Config
from policy_watch.models import Decision
from policy_watch.queries import WINDOW_STATUSES
from policy_watch.store import Store

# The form's choices, named as the CLI's commands, with their labels.
ACTIONS = {"ack": "Acknowledge", "object": "Object", "accept": "Accept"}


def record(config: Config, window_id: int, action: str, by: str, note: str | None, now: datetime) -> Decision:
    """One short write transaction on a connection of its own (raises NotFoundError for no such window)."""
    store = Store.open(config.settings.database, create=False)
    try:
        return store.windows.add_decision(window_id, WINDOW_STATUSES[action], by, note, now)
    finally:
        store.close()


def history(store: Store, window_id: int) -> list[Decision]:
    """The window's decisions, oldest first."""
    return store.windows.decisions(window_id)
