"""What changes and names mean, for the pages: transfer risk (``meaning.transfers``) and one
company under its many names (``meaning.entities``), read at display time from what was stored."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from policy_watch.config import Config
from policy_watch.meaning import entities, transfers
from policy_watch.meaning.transfers import TransferMeaning
from policy_watch.store import Store
from policy_watch.store import reading as rd

SCAN_CHUNK = 400  # changes read at a time while looking for those with a given risk
IDENTITY_CACHE = 500_000  # names whose identity is kept (cleared beyond that)


@dataclass(frozen=True, slots=True)
class Risk:
    place: str
    text: str  # "US: adequacy only for DPF-certified organisations"


class Meanings:
    def __init__(self, config: Config) -> None:
        self.rules = transfers.rules(config.transfers)
        self.aliases = entities.alias_table(config.aliases)
        self._identities: dict[str, entities.Identity] = {}

    # --- transfers ---------------------------------------------------------------------------------

    def of_changes(self, store: Store, rows: Sequence[rd.ChangeRow]) -> dict[int, TransferMeaning]:
        """Change id -> its transfer meaning, for the changes that add or change a location."""
        located = rd.added_locations(store, [c.id for c in rows if c.kind == "added"])
        out = {}
        for c in rows:
            m = transfers.meaning_of(c.kind, c.field, c.old, c.new, located.get(c.id, ""), self.rules)
            if m is not None:
                out[c.id] = m
        return out

    @staticmethod
    def risks(meanings: Iterable[TransferMeaning]) -> list[Risk]:
        """The transfer risks the changes bring, once each."""
        seen: dict[str, Risk] = {}
        for m in meanings:
            for r in m.new:
                seen.setdefault(r.place, Risk(r.place, r.text()))
        return list(seen.values())

    def risky_changes(self, store: Store, filters: rd.ChangeFilter, place: str | None, limit: int,
                      offset: int) -> tuple[list[rd.ChangeRow], dict[int, TransferMeaning]]:  # fmt: skip
        """Changes (newest first) that bring a transfer risk (to ``place``, when given)."""
        found: list[rd.ChangeRow] = []
        meanings: dict[int, TransferMeaning] = {}
        start = 0
        while len(found) < offset + limit:
            batch = rd.located_changes(store, filters, SCAN_CHUNK, start)
            start += len(batch)
            for c, m in self.of_changes(store, batch).items():
                if any(place is None or r.place == place for r in m.new):
                    meanings[c] = m
            found += [c for c in batch if c.id in meanings]
            if len(batch) < SCAN_CHUNK:
                break
        page = found[offset : offset + limit]
        return page, {c.id: meanings[c.id] for c in page}

    # --- names -------------------------------------------------------------------------------------

    def identity(self, name: str) -> entities.Identity:
        known = self._identities.get(name)
        if known is None:
            if len(self._identities) > IDENTITY_CACHE:
                self._identities.clear()
            known = self._identities[name] = entities.identify(name, self.aliases, self.rules.gazetteer)
        return known

    def warm(self, store: Store) -> None:
        """Identify every current name once (the first entity search then costs no more than later ones)."""
        for name in rd.current_entity_names(store):
            self.identity(name)

    def who(self, store: Store, query: str) -> list[entities.Match]:
        """``meaning.entities.who`` over the current lists. Names that cannot match (no name key in
        common with the query's company, and not the query's words) are left out first, through
        identities kept between requests: identifying every current name takes seconds."""
        q = entities.identify(query, self.aliases, self.rules.gazetteer)
        written = entities.spellings(query)
        wanted = q.names | {q.key} | ({entities.name_key(written[0])} if written else set())
        word = re.compile(r"(?<!\w)" + re.escape(" ".join(query.split())), re.IGNORECASE)
        names = [n for n in rd.current_entity_names(store) if self.identity(n).names & wanted or word.search(n)]
        listings = [entities.Listing(x.vendor, x.entity, x.section, x.purpose, x.country)
                    for x in rd.listings(store, names, exact=True)]  # fmt: skip
        return entities.who(query, listings, self.aliases, self.rules.gazetteer)
