"""Vendors' current lists as the ``current_entries`` view reads them, and the company each
spelling of an entity names (derived data, rebuilt when the rules change; not evidence)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from policy_watch.models import Listing
from policy_watch.store.part import Part
from policy_watch.store.rows import CurrentEntry, NamesTodo


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

    def names_todo(self, rules: str) -> NamesTodo:
        """What ``entity_names`` needs: the spellings of every row on record (a row is stored once,
        whichever snapshots list it: current, held, superseded or a later reading), each read once.
        Built by other rules: all of them again. Else those of the rows stored since it was last
        brought up to date (a run where nothing changed reads none); on a database that never noted
        how far it got, every spelling the table lacks."""
        upto = int(self._conn.execute("select coalesce(max(id), 0) from rows").fetchone()[0])
        noted = self._note(_NAMES_RULES)
        if noted is None:  # rules not noted yet (an older database): look for rows read by others
            other = self._conn.execute("select 1 from entity_names where rules != ? limit 1", [rules])
            rebuild = other.fetchone() is not None
        else:
            rebuild = noted != rules
        if rebuild:
            spellings = self._conn.execute("select distinct entity from rows where entity is not null")
            return NamesTodo(True, [r[0] for r in spellings.fetchall()], upto, None)
        mark = self._note(_NAMES_MARK)
        since = 0 if mark is None else int(mark)
        missing = self._conn.execute(
            "select distinct r.entity from rows r where r.id > ? and r.entity is not null"
            " and not exists(select 1 from entity_names n where n.entity = r.entity)",
            [since],
        ).fetchall()
        return NamesTodo(False, [r[0] for r in missing], upto, None if mark is None else since)

    def add_names(self, names: Sequence[tuple[str, str, str]], rules: str, todo: NamesTodo) -> None:
        """(spelling, company, company key) per spelling of ``todo``; derived data: rebuilt whole when
        the rules changed, else only added to. Notes how far the rows are read, and by which rules."""
        if todo.rebuild:
            self._conn.execute("delete from entity_names")
        self._conn.executemany(
            "insert or replace into entity_names values (?, ?, ?, ?)", [(*n, rules) for n in names]
        )
        self._conn.executemany(
            "insert or replace into schema_info (key, value) values (?, ?)",
            [(_NAMES_MARK, str(todo.upto)), (_NAMES_RULES, rules)],
        )

    def _note(self, key: str) -> str | None:
        row = self._conn.execute("select value from schema_info where key = ?", [key]).fetchone()
        return None if row is None else str(row[0])


_NAMES_MARK = "entity_names_rows_upto"  # the last row whose spelling entity_names holds
_NAMES_RULES = "entity_names_rules"  # the rules they were read by
