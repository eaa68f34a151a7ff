"""Vendors' current lists as the ``current_entries`` view reads them, and the company each
spelling of an entity names (derived data, rebuilt when the rules change; not evidence)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from policy_watch.models import Listing
from policy_watch.store.part import Part
from policy_watch.store.rows import CurrentEntry


class Entries(Part):
    """Current entries of every vendor, and the company names read from their spellings."""

    def current(self) -> list[CurrentEntry]:
        """Every vendor's current entries (its last good snapshot), by vendor and position."""
        rows = self._query(
            "select vendor, section, entity, purpose, country, extra, snapshot_id, first_seen, last_seen,"
            " declared_date from current_entries"
        )
        return [CurrentEntry(**{**r, "extra": json.loads(r["extra"] or "{}")}) for r in rows]

    def listings(self) -> list[Listing]:
        """Every vendor's current entries, as the cross-vendor views read them."""
        rows = self._conn.execute("select vendor, entity, section, purpose, country from current_entries")
        return [Listing(r[0], r[1], r[2] or "", r[3] or "", r[4] or "") for r in rows.fetchall()]

    def names_todo(self, rules: str) -> tuple[bool, list[str]]:
        """What ``entity_names`` needs: (rebuild, spellings to read). Built by other rules: rebuild
        from every current spelling; else only the current spellings it lacks (often none)."""
        if self._one("select 1 as x from entity_names where rules != ? limit 1", [rules]) is not None:
            return True, [r["entity"] for r in self._query("select distinct entity from current_entries")]
        missing = self._query(
            "select distinct c.entity from current_entries c"
            " where not exists(select 1 from entity_names n where n.entity = c.entity)"
        )
        return False, [r["entity"] for r in missing]

    def add_names(self, names: Sequence[tuple[str, str, str]], rules: str, *, rebuild: bool) -> None:
        """(spelling, company, company key) per spelling; derived data: rebuilt whole when the rules
        changed, else only added to."""
        if rebuild:
            self._conn.execute("delete from entity_names")
        self._conn.executemany(
            "insert or replace into entity_names values (?, ?, ?, ?)", [(*n, rules) for n in names]
        )
