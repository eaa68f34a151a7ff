"""Entries from data a page carries in its scripts: a trust portal whose HTML is an empty shell
often ships its list as JSON (``__NEXT_DATA__``, ``application/ld+json``, ``window.__NUXT__ =
{...}``, ``self.__next_f.push([...])``).

Pure: the page's text in, entries out. Every JSON value found is walked for arrays of objects
whose keys read as entity / purpose / location, by the same header synonyms as table columns.
A list's section is the title of the object that holds it; the declared date is the nearest
``updatedAt``-style key around it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from selectolax.lexbor import LexborHTMLParser

from policy_watch.models import Entry
from policy_watch.parse.base import dedupe
from policy_watch.parse.dates import parse_date
from policy_watch.parse.headers import COUNTRY, ENTITY, PURPOSE, map_columns, normalise_header
from policy_watch.text import collapse

_JSON_TYPES = ("application/json", "application/ld+json")
# An assignment or call whose argument may be JSON: ``window.__NUXT__ = {``, ``self.__next_f.push([``.
_INLINE = re.compile(r"(?:(?:window|self|globalThis|document)\.[\w$.]+\s*=|\.push\(|JSON\.parse\()\s*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_FLIGHT_LINE = re.compile(r"^[0-9a-fA-F]+:(?=[\[{])", re.M)  # a React Server Components row: "5:[...]"
_TITLE_KEYS = ("title", "heading", "sectionTitle", "section", "category", "group", "label", "name")
_DATE_KEYS = {
    "updated at",
    "updated",
    "last updated",
    "lastupdated",
    "date modified",
    "modified",
    "modified at",
    "last modified",
    "published at",
    "date published",
    "effective date",
    "effective",
    "updated on",
    "last updated at",
    "last updated date",
    "published",
    "publish date",
}
_SKIP_EXTRA = {
    "id",
    "uuid",
    "key",
    "slug",
    "url",
    "href",
    "link",
    "logo",
    "image",
    "icon",
    "typename",
    "created at",
    "order",
    "index",
    "position",
    "sort",
    "sort order",
    "type",
}
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_MAX_DEPTH = 40
_MAX_SCRIPT = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EmbeddedList:
    """What the page's scripts carry: entries, the columns per section, and a declared date."""

    entries: tuple[Entry, ...]
    columns: tuple[tuple[str, tuple[str, ...]], ...]
    declared: date | None


def key_words(key: str) -> str:
    """``"companyName"`` → ``"company name"``; ``"data_location"`` → ``"data location"``."""
    return normalise_header(_CAMEL.sub(" ", key))


def script_values(text: str) -> Iterator[object]:
    """Every JSON value the page's scripts carry, in page order."""
    tree = LexborHTMLParser(text)
    flight: list[str] = []
    for script in tree.tags("script"):
        kind = (script.attrs.get("type") or "").split(";")[0].strip().lower()
        code = script.text(deep=True)
        if not code or len(code) > _MAX_SCRIPT:
            continue
        if kind in _JSON_TYPES:
            try:
                yield json.loads(code)
            except ValueError:
                continue
        elif kind in ("", "text/javascript", "application/javascript", "module"):
            for value in _inline_values(code):
                if isinstance(value, list) and "__next_f" in code:
                    flight.extend(part for part in value if isinstance(part, str))
                yield value
    if flight:  # Next.js app router: the payload is split over many pushes
        yield from _flight_values("".join(flight))


def _inline_values(code: str) -> Iterator[object]:
    decoder = json.JSONDecoder()
    for match in _INLINE.finditer(code):
        start = match.end()
        if start >= len(code):
            continue
        try:
            value, _ = decoder.raw_decode(code, start)
        except ValueError:
            continue
        if isinstance(value, str) and match.group(0).startswith("JSON.parse"):
            try:
                value = json.loads(value)
            except ValueError:
                continue
        if isinstance(value, dict | list | str):
            yield value


def _flight_values(payload: str) -> Iterator[object]:
    decoder = json.JSONDecoder()
    for match in _FLIGHT_LINE.finditer(payload):
        try:
            value, _ = decoder.raw_decode(payload, match.end())
        except ValueError:
            continue
        yield value


def read_embedded(text: str) -> EmbeddedList:
    """The entries of every list of objects in the page's script data (none: empty)."""
    entries: list[Entry] = []
    columns: dict[str, tuple[str, ...]] = {}
    declared: date | None = None
    for value in script_values(text):
        for found in _lists(value, [], 0):
            section, rows, names, found_date = found
            entries.extend(rows)
            columns.setdefault(section, names)
            declared = declared or found_date
    return EmbeddedList(dedupe(entries), tuple(columns.items()), declared)


_Found = tuple[str, list[Entry], tuple[str, ...], date | None]


def _lists(value: object, holders: list[dict[str, object]], depth: int) -> Iterator[_Found]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, list):
        found = _read_list(value, holders)
        if found is not None:
            yield found
            return
        for item in value:
            yield from _lists(item, holders, depth + 1)
    elif isinstance(value, dict):
        holders.append(value)
        for item in value.values():
            if isinstance(item, dict | list):
                yield from _lists(item, holders, depth + 1)
        holders.pop()


def _read_list(items: list[object], holders: list[dict[str, object]]) -> _Found | None:
    objects = [item for item in items if isinstance(item, dict)]
    if not objects or len(objects) < len(items):
        return None
    keys: list[str] = []
    for obj in objects:
        keys.extend(k for k in obj if k not in keys and _scalar(obj[k]) is not None)
    mapping = map_columns([key_words(k) for k in keys])
    if mapping is None or (mapping.purpose is None and mapping.country is None):
        return None  # a menu or a list of links also has "name": a list needs a second field
    fields = {ENTITY: keys[mapping.entity]}
    if mapping.purpose is not None:
        fields[PURPOSE] = keys[mapping.purpose]
    if mapping.country is not None:
        fields[COUNTRY] = keys[mapping.country]
    extras = [(keys[i], name) for i, name in mapping.extras if _is_extra(keys[i])]
    section = _section(holders)
    rows: list[Entry] = []
    for obj in objects:
        entity = _scalar(obj.get(fields[ENTITY]))
        if not entity:
            continue
        rows.append(
            Entry(
                section=section,
                entity=entity,
                purpose=_scalar(obj.get(fields.get(PURPOSE, ""))) or "",
                country=_scalar(obj.get(fields.get(COUNTRY, ""))) or "",
                extra=tuple((name, _scalar(obj.get(key)) or "") for key, name in extras),
            )
        )
    if not rows:
        return None
    names = (ENTITY, *(f for f in (PURPOSE, COUNTRY) if f in fields), *(name for _, name in extras))
    return section, rows, names, _declared(holders)


def _scalar(value: object) -> str | None:
    """A field's text: a string or number, a list of them joined, or a ``{"name": ...}`` object."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return collapse(str(value))
    if isinstance(value, list) and value and all(_scalar(v) for v in value):
        return ", ".join(str(_scalar(v)) for v in value)
    if isinstance(value, dict):
        for key in ("name", "label", "title", "value"):
            if isinstance(value.get(key), str):
                return collapse(str(value[key]))
    return None


def _is_extra(key: str) -> bool:
    words = key_words(key)
    return bool(words) and words not in _SKIP_EXTRA and words not in _DATE_KEYS and not words.endswith(" id")


def _section(holders: list[dict[str, object]]) -> str:
    """The title of the object that holds the list itself (a page's own name is no section)."""
    if not holders:
        return ""
    for key in _TITLE_KEYS:
        title = holders[-1].get(key)
        if isinstance(title, str) and title.strip():
            return collapse(title)
    return ""


def _declared(holders: list[dict[str, object]]) -> date | None:
    """The nearest ``updatedAt``-style date among the objects around the list."""
    for holder in reversed(holders):
        for key, value in holder.items():
            if isinstance(value, str) and key_words(key) in _DATE_KEYS:
                found = _date(value)
                if found is not None:
                    return found
    return None


def _date(value: str) -> date | None:
    if _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return parse_date(value)
