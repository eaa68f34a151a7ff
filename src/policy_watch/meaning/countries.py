"""Location cells read into ISO 3166-1 alpha-2 codes, regions, and the text nobody could read.

A cell may list several places ("United States, France,\\nSwitzerland, and Japan"). Each part is
looked up whole, never guessed: ISO names (official and common ones) and codes from pycountry,
their names in a few European languages where they are unambiguous ("Deutschland"), the short
forms, cities and regions in ``data/places.toml``, and the user's own places from config.toml.
A part that matches nothing is kept as text in ``Location.unread``.
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

# Separators between places in one cell; "*" and brackets set off footnotes and notes.
_SEP = re.compile(r"(\s*(?:[,;/|&+\n•·*()\[\]]|\band\b|\bor\b)\s*)", re.IGNORECASE)
_MARKS = re.compile(r"[†‡¹²³⁴⁵⁶⁷⁸⁹⁰]+")
_MAX_JOIN = 5  # longest run of parts one name can span ("Heard Island and McDonald Islands")
# Languages whose country names a European vendor may write (names that mean two codes are dropped).
_LANGUAGES = ("de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da", "fi", "cs")
_NOT_CODES = {"NA"}  # "N/A" without its slash, not Namibia


@dataclass(frozen=True, slots=True)
class Region:
    label: str
    inside_eea: bool


@dataclass(frozen=True, slots=True)
class Location:
    """What one location cell names: country codes, regions, and parts left as text, in cell order."""

    codes: tuple[str, ...] = ()
    regions: tuple[Region, ...] = ()
    unread: tuple[str, ...] = ()

    @property
    def places(self) -> tuple[str, ...]:
        """Codes then region labels: what the ``countries`` field of a change shows."""
        return self.codes + tuple(r.label for r in self.regions)


def key(text: str) -> str:
    """Lookup key of a place name: accents, dots and case dropped, whitespace collapsed."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch)).replace("’", "'")
    return " ".join(text.replace(".", "").casefold().split())


@dataclass(frozen=True, slots=True, eq=False)
class Gazetteer:
    """Every name this reader knows, by ``key``. Hashed by identity: readings are memoised per gazetteer."""

    names: Mapping[str, str]  # key -> alpha-2 code
    regions: Mapping[str, Region]
    alpha2: frozenset[str]
    alpha3: Mapping[str, str]  # alpha-3 -> alpha-2

    def read(self, cell: str) -> Location:
        return _read_memo(cell, self)

    def extended(self, places: Mapping[str, str]) -> Gazetteer:
        """A copy that also knows ``places`` (name -> alpha-2 code, checked by the caller)."""
        return Gazetteer(
            {**self.names, **{key(n): c for n, c in places.items()}}, self.regions, self.alpha2, self.alpha3
        )


def country_name(code: str) -> str | None:
    """The short English name of an alpha-2 code ("Korea, Republic of" reads "South Korea"), or None."""
    import pycountry

    c = pycountry.countries.get(alpha_2=code.upper())
    if c is None:
        return None
    return str(getattr(c, "common_name", None) or c.name)


def is_code(code: str) -> bool:
    return len(code) == 2 and code.isupper() and country_name(code) is not None


@functools.cache
def gazetteer() -> Gazetteer:
    """The shipped gazetteer (built once per process)."""
    import gettext

    import pycountry

    names: dict[str, str] = {}
    alpha3: dict[str, str] = {}
    for c in pycountry.countries:
        alpha3[c.alpha_3] = c.alpha_2
        for attr in ("name", "official_name", "common_name"):
            value = getattr(c, attr, None)
            if value:
                names[key(value)] = c.alpha_2
                if ", " in value:  # "Korea, Republic of" is also written "Republic of Korea"
                    head, _, tail = value.partition(", ")
                    names.setdefault(key(f"{tail} {head}"), c.alpha_2)
    native: dict[str, set[str]] = {}
    for lang in _LANGUAGES:
        try:
            tr = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang])
        except OSError:
            continue
        for c in pycountry.countries:
            local = tr.gettext(c.name)
            if local != c.name:
                native.setdefault(key(local), set()).add(c.alpha_2)
    for name, codes in native.items():
        if len(codes) == 1 and names.get(name, next(iter(codes))) == next(iter(codes)):
            names.setdefault(name, next(iter(codes)))
    data = tomllib.loads(
        resources.files("policy_watch.meaning").joinpath("data/places.toml").read_text("utf-8")
    )
    for table in ("short_names", "cities"):
        names.update({key(n): c for n, c in data[table].items()})
    for name in ("georgia",):  # the US state would be read as the country: never certain
        names.pop(name, None)
    regions = {key(n): Region(r["label"], bool(r["inside_eea"])) for n, r in data["regions"].items()}
    return Gazetteer(names, regions, frozenset(alpha3.values()), alpha3)


def _lookup(part: str, gaz: Gazetteer) -> str | Region | None:
    bare = part.replace(".", "").replace(" ", "") if len(part) <= 8 else part
    if len(bare) == 2 and bare.isupper() and bare in gaz.alpha2 and bare not in _NOT_CODES:
        return bare
    if len(bare) == 3 and bare.isupper() and bare in gaz.alpha3:
        return gaz.alpha3[bare]
    k = key(part)
    if k.startswith("the "):
        k = k[4:]
    return gaz.regions.get(k) or gaz.names.get(k)


@functools.lru_cache(maxsize=8192)
def _read_memo(cell: str, gaz: Gazetteer) -> Location:
    """The same cells come back on every page and every day: each is read once per process."""
    return read_location(cell, gaz)


def read_location(cell: str, gaz: Gazetteer | None = None) -> Location:
    """Read one location cell. Every part is matched whole; a name may span separators
    ("Bosnia and Herzegovina", "Korea, Republic of"), the longest match wins."""
    gaz = gaz or gazetteer()
    pieces = _SEP.split(unicodedata.normalize("NFKC", _MARKS.sub("", cell)))
    parts, seps = pieces[0::2], pieces[1::2]
    codes: list[str] = []
    regions: list[Region] = []
    unread: list[str] = []
    i = 0
    while i < len(parts):
        if not parts[i].strip():
            i += 1
            continue
        for j in range(min(len(parts), i + _MAX_JOIN), i, -1):
            text = "".join(p + (seps[n] if n < j - 1 else "") for n, p in enumerate(parts[i:j], start=i))
            found = _lookup(text.strip(), gaz)
            if found is not None:
                break
        if found is None:
            unread.append(" ".join(parts[i].split()))
            i += 1
            continue
        if isinstance(found, Region):
            if found not in regions:
                regions.append(found)
        elif found not in codes:
            codes.append(found)
        i = j
    return Location(tuple(codes), tuple(regions), tuple(dict.fromkeys(unread)))
