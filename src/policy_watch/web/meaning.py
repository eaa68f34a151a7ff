"""What changes and names mean, for the pages: transfer risk (``meaning.transfers``) and one
company under its many names (``meaning.entities``), read at display time from what was stored."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from policy_watch.config import Config
from policy_watch.meaning import entities, transfers
from policy_watch.meaning.transfers import TransferMeaning
from policy_watch.store import Store
from policy_watch.store import reading as rd

MEANING_CACHE = 200_000  # change meanings kept (cleared beyond that)


@dataclass(frozen=True, slots=True)
class Risk:
    place: str
    text: str  # "US: adequacy only for DPF-certified organisations"


class Meanings:
    def __init__(self, config: Config) -> None:
        self.rules = transfers.rules(config.transfers)
        self.aliases = entities.alias_table(config.aliases)
        self._lock = threading.Lock()
        self._last_row = 0  # the index below covers the rows table up to this id
        self._by_key: dict[str, set[str]] = {}  # name key -> every stored entity name that answers to it
        self._meanings: dict[rd.ChangeKey, TransferMeaning | None] = {}

    # --- transfers ---------------------------------------------------------------------------------

    def of_changes(self, store: Store, rows: Sequence[rd.ChangeRow]) -> dict[int, TransferMeaning]:
        """Change id -> its transfer meaning, for the changes that add or change a location. A stored
        change never changes, so its meaning is worked out once per process."""
        todo = [c for c in rows if rd.change_key(c) not in self._meanings]
        if todo:
            if len(self._meanings) > MEANING_CACHE:
                self._meanings.clear()
            located = rd.added_locations(store, [c.id for c in todo if c.kind == "added"])
            for c in todo:
                self._meanings[rd.change_key(c)] = transfers.meaning_of(
                    c.kind, c.field, c.old, c.new, located.get(c.id, ""), self.rules
                )
        return {c.id: m for c in rows if (m := self._meanings.get(rd.change_key(c))) is not None}

    @staticmethod
    def risks(meanings: Iterable[TransferMeaning]) -> list[Risk]:
        """The transfer risks the changes bring, once each."""
        seen: dict[str, Risk] = {}
        for m in meanings:
            for r in m.new:
                seen.setdefault(r.place, Risk(r.place, r.text()))
        return list(seen.values())

    def risky_changes(
        self, store: Store, filters: rd.ChangeFilter, place: str | None, limit: int, offset: int
    ) -> tuple[list[rd.ChangeRow], dict[int, TransferMeaning]]:
        """Changes (newest first) that bring a transfer risk (to ``place``, when given)."""
        keys = rd.located_change_keys(store, filters)
        missing = [k[0] for k in keys if k not in self._meanings]
        if missing:  # changes stored since start-up: read them once
            self.of_changes(store, rd.changes_by_id(store, missing))
        found = []
        for k in keys:
            m = self._meanings.get(k)
            if m is not None and any(place is None or r.place == place for r in m.new):
                found.append(k[0])
        page = rd.changes_by_id(store, found[offset : offset + limit])
        return page, self.of_changes(store, page)

    # --- names -------------------------------------------------------------------------------------

    def _index_names(self, store: Store) -> None:
        """Bring the name-key index up to the rows stored since it was last read: rows are only
        ever added, so each name is identified once per process."""
        with self._lock:
            self._last_row, names = rd.row_entities_after(store, self._last_row)
            for name in names:
                for k in entities.identify(name, self.aliases, self.rules.gazetteer).names:
                    self._by_key.setdefault(k, set()).add(name)

    def warm(self, store: Store) -> None:
        """Identify every stored name, and read every stored change's meaning, once: the first
        searches then cost no more than later ones."""
        self._index_names(store)
        self.of_changes(
            store, rd.changes_by_id(store, [k[0] for k in rd.located_change_keys(store, rd.ChangeFilter())])
        )

    def who(self, store: Store, query: str) -> list[entities.Match]:
        """``meaning.entities.who`` over the current lists, given only the names that can match: those
        with a name key in common with the query's company (from the index), and those that contain
        the query's text (``who`` then keeps the ones where it starts a word)."""
        self._index_names(store)
        q = entities.identify(query, self.aliases, self.rules.gazetteer)
        written = entities.spellings(query)
        wanted = q.names | {q.key} | ({entities.name_key(written[0])} if written else set())
        names: set[str] = set()
        for k in wanted:
            names |= self._by_key.get(k, set())
        text = " ".join(query.split())
        if text:
            names.update(rd.row_entities_containing(store, text))
        listings = rd.listings(store, sorted(names), exact=True)
        return entities.who(query, listings, self.aliases, self.rules.gazetteer)
