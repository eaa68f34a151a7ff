"""Mapping table header texts to the canonical fields: entity, purpose, country."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from policy_watch.parse.synonyms import (
    CORPORATE_PLACE_NAMES,
    CORPORATE_WORDS,
    ENTITY_NAMES,
    ENTITY_WORDS,
    NON_SUBPROCESSOR_WORDS,
    PLACE_NAMES,
    PLACE_WORDS,
    PROCESSING_PLACE_NAMES,
    PURPOSE_NAMES,
    PURPOSE_WORDS,
)
from policy_watch.text import words

ENTITY, PURPOSE, COUNTRY = "entity", "purpose", "country"
FIELDS = (ENTITY, COUNTRY, PURPOSE)  # assignment order on equal scores

_FOOTNOTE = re.compile(r"(?:\s*[*†‡]+|\s*\(\d\)|\s*\[\d+\])+$")


def normalise_header(text: str) -> str:
    """``"Location(s) of Processing*"`` → ``"location s of processing"``."""
    text = _FOOTNOTE.sub("", text.strip()).lower().replace("sub-processor", "subprocessor")
    return " ".join(words(text))


@lru_cache(maxsize=4096)  # the same few hundred header texts recur across pages
def _scores(header: str) -> tuple[tuple[int, str], ...]:
    """Candidate fields of one header, with how sure the match is (higher is surer)."""
    norm = normalise_header(header)
    words = set(norm.split())
    found: list[tuple[int, str]] = []
    if norm in ENTITY_NAMES:
        found.append((3, ENTITY))
    elif words & ENTITY_WORDS and not words & (PLACE_WORDS | PURPOSE_WORDS):
        found.append((1, ENTITY))
    if norm in PROCESSING_PLACE_NAMES:
        found.append((4, COUNTRY))
    elif norm in PLACE_NAMES:
        found.append((3, COUNTRY))
    elif norm in CORPORATE_PLACE_NAMES or (words & PLACE_WORDS and words & CORPORATE_WORDS):
        found.append((0, COUNTRY))
    elif words & PLACE_WORDS:
        found.append((2 if "processing" in words or "data" in words else 1, COUNTRY))
    if norm in PURPOSE_NAMES:
        found.append((3, PURPOSE))
    elif words & PURPOSE_WORDS:
        found.append((1, PURPOSE))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which column holds which field; every other column is an extra, keyed by its header."""

    entity: int
    purpose: int | None
    country: int | None
    names: tuple[str, ...]  # per column: a canonical field or the extra column's header

    @property
    def extras(self) -> tuple[tuple[int, str], ...]:
        mapped = {self.entity, self.purpose, self.country}
        return tuple((i, name) for i, name in enumerate(self.names) if i not in mapped)


def looks_like_other_table(headers: list[str]) -> bool:
    """Cookie, pricing and similar tables that may still have a "Provider" column."""
    return any(_is_other_header(h) for h in headers)


@lru_cache(maxsize=4096)
def _is_other_header(header: str) -> bool:
    return bool(set(normalise_header(header).split()) & NON_SUBPROCESSOR_WORDS)


def _extra_names(headers: tuple[str, ...], fields: dict[int, str]) -> tuple[str, ...]:
    names: list[str] = []
    for i, header in enumerate(headers):
        name = fields.get(i) or header or f"column {i + 1}"
        while name in names:
            name = f"{name} ({i + 1})"
        names.append(name)
    return tuple(names)


def map_label(label: str) -> str | None:
    """The field a ``Label:`` in a card stands for, if any."""
    found = sorted(_scores(label), key=lambda candidate: -candidate[0])
    return found[0][1] if found and found[0][0] > 0 else None


def map_columns(headers: list[str]) -> ColumnMap | None:
    """Assign fields to columns, surest first; None when no column holds the entity."""
    return _map_columns(tuple(headers))


@lru_cache(maxsize=1024)
def _map_columns(headers: tuple[str, ...]) -> ColumnMap | None:
    candidates = sorted(
        (-score, FIELDS.index(field), col, field)
        for col, header in enumerate(headers)
        for score, field in _scores(header)
    )
    fields: dict[int, str] = {}
    taken: set[str] = set()
    for _, _, col, field in candidates:
        if col not in fields and field not in taken:
            fields[col] = field
            taken.add(field)
    by_field = {field: col for col, field in fields.items()}
    if ENTITY not in by_field:
        return None
    return ColumnMap(
        by_field[ENTITY], by_field.get(PURPOSE), by_field.get(COUNTRY), _extra_names(headers, fields)
    )


def positional_map(width: int) -> ColumnMap:
    """No header: first column is the entity, then purpose, then country."""
    names = tuple((ENTITY, PURPOSE, COUNTRY)[i] if i < 3 else f"column {i + 1}" for i in range(width))
    return ColumnMap(0, 1 if width > 1 else None, 2 if width > 2 else None, names)
