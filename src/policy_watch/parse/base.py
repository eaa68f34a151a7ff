"""What every page layout reader shares: the Protocol, its result, and entry building."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from policy_watch.models import Entry, ParseRules
from policy_watch.parse.document import Page


@dataclass(frozen=True, slots=True)
class LayoutResult:
    """Entries one layout read from a page, or a note on what it saw instead."""

    entries: tuple[Entry, ...] = ()
    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()  # parallel to ``columns``: header texts
    seen: tuple[str, ...] = field(default_factory=tuple)  # phrases for the "nothing found" message


class Layout(Protocol):
    """Reads entries of one page layout (tables, lists, ...) from a parsed page."""

    def __call__(self, page: Page, rules: ParseRules) -> LayoutResult: ...


def make_entry(
    section: str,
    entity: str,
    purpose: str = "",
    country: str = "",
    extra: Mapping[str, str] | None = None,
) -> Entry:
    return Entry(
        section=section,
        entity=entity,
        purpose=purpose,
        country=country,
        extra=tuple(extra.items()) if extra else (),
    )


def dedupe(entries: list[Entry]) -> tuple[Entry, ...]:
    """Drop exact repeats (same row twice in one section), keeping the first."""
    seen: set[Entry] = set()
    kept: list[Entry] = []
    for entry in entries:
        if entry not in seen:
            seen.add(entry)
            kept.append(entry)
    return tuple(kept)
