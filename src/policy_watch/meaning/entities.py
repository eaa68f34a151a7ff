"""One name per company across vendors and spellings.

A listing's names: its main name and every name set off in it ("Amazon.com, Inc. (Amazon Web
Services)", "NexMo (aka Vonage)", "AlphaAI Technologies Inc. dba Tavily"), each compared without
case, accents, punctuation and legal suffixes ("Inc.", ", LLC", "GmbH": the set the differ
uses too, ``policy_watch.text.LEGAL_SUFFIXES``). The alias table
(``data/aliases.toml`` plus config.toml's ``[aliases]``) joins the well-known short names ("AWS",
"GCP", "Azure") to their company.

This is for reading across vendors only (``who``, ``entities``): the differ does not read aliases,
so an alias never turns a real change within a vendor into "no change".
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from policy_watch.lookalike import visible
from policy_watch.meaning.countries import Gazetteer
from policy_watch.models import Listing
from policy_watch.text import LEGAL_SUFFIXES, collapse, words

_ALSO_WORDS = r"d/b/a|dba|aka|a/k/a|t/a|trading as|doing business as|formerly"
_ALSO = re.compile(rf"\s+(?:{_ALSO_WORDS})\.?\s+", re.IGNORECASE)
_LEAD = re.compile(rf"^(?:{_ALSO_WORDS}|now)\.?\s+", re.IGNORECASE)
_PAREN = re.compile(r"\(([^()]*)\)")
_TLD = re.compile(r"\.(?:com|io|ai|net|co|org|app|dev)$", re.IGNORECASE)
_INITIALS = re.compile(r"(?<=\b\w)\.(?=\w\b)")  # the dots between single letters


def name_key(name: str) -> str:
    """Comparison key: "Amazon Web Services, Inc." and "amazon web services" give "amazonwebservices"."""
    text = name
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.strip()
    if "." in text:
        text = _INITIALS.sub("", _TLD.sub("", text)).replace(".", "")  # "L.L.C." -> "LLC"
    kept = words(text.replace("&", " and ").casefold())
    while len(kept) > 1 and kept[-1] in LEGAL_SUFFIXES:
        kept.pop()
    if len(kept) > 1 and kept[0] == "the":
        kept.pop(0)
    return "".join(kept)


def spellings(name: str) -> tuple[str, ...]:
    """The names one listing gives, as written: main name first, then those in brackets or after dba/aka."""
    if "(" in name:
        texts = [collapse(_PAREN.sub(" ", name)), *(m.strip() for m in _PAREN.findall(name))]
    else:  # most names: one text
        texts = [collapse(name)]
    out: list[str] = []
    for text in texts:
        out += [_LEAD.sub("", p).strip(" ,;") for p in _ALSO.split(text)]
    return tuple(dict.fromkeys(p for p in out if p))


@dataclass(frozen=True, slots=True, eq=False)
class AliasTable:
    canonical: Mapping[str, str]  # name key -> company name as shown

    def company(self, key: str) -> str | None:
        return self.canonical.get(key)


@functools.cache
def _shipped() -> dict[str, list[str]]:
    text = resources.files("policy_watch.meaning").joinpath("data/aliases.toml").read_text("utf-8")
    return tomllib.loads(text)


@functools.cache
def alias_table(extra: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> AliasTable:
    """The shipped aliases plus config.toml's (``company -> names``); a user's entry wins."""
    canonical: dict[str, str] = {}
    for company, names in [*_shipped().items(), *extra]:
        for n in (company, *names):
            canonical[name_key(n)] = company
    return AliasTable(canonical)


NAME_RULES = 1  # raise when name_key, spellings or identify read names differently


@functools.cache
def fingerprint(extra: tuple[tuple[str, tuple[str, ...]], ...], places: tuple[tuple[str, str], ...]) -> str:
    """Names the rules that ``identify`` applies: the shipped alias table, the legal forms, this
    module's own reading of a name (``NAME_RULES``) and the user's additions. When it changes,
    the table of company names is read again."""
    import hashlib

    shipped = resources.files("policy_watch.meaning").joinpath("data/aliases.toml").read_bytes()
    rules = repr((NAME_RULES, sorted(LEGAL_SUFFIXES), extra, places))
    return hashlib.sha1(shipped + rules.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a listing names: one company, under the names the listing gives."""

    company: str  # display name: the alias table's, else the listing's main name
    key: str  # company key: listings with the same key are the same company
    names: frozenset[str]  # name keys the listing answers to (its own and its company's)


@functools.lru_cache(maxsize=8192)
def identify(entity: str, table: AliasTable, places: Gazetteer | None = None) -> Identity:
    """The company a listing names. A name in brackets that is a place ("Google (EU)") is not a name.
    Memoised: the same names come back on every page and every day (tables hash by identity)."""
    written = spellings(entity) or (entity,)
    keys = []
    for i, text in enumerate(written):
        if i and places is not None and _is_place(text, places):
            continue
        if k := name_key(text):
            keys.append(k)
    for k in keys:
        if (company := table.company(k)) is not None:
            ck = name_key(company)
            return Identity(company, ck, frozenset([*keys, ck]))
    main = keys[0] if keys else name_key(entity)
    return Identity(collapse(written[0]), main, frozenset(keys or [main]))


def _is_place(text: str, places: Gazetteer) -> bool:
    loc = places.read(text)
    return bool(loc.places) and not loc.unread


@dataclass(frozen=True, slots=True)
class Match:
    listing: Listing
    company: str
    how: str  # "same name", "alias of COMPANY", "one of the names it gives", "text" (words in the name)


def who(
    query: str, listings: Iterable[Listing], table: AliasTable, places: Gazetteer | None = None
) -> list[Match]:
    """Every listing that names the company ``query`` names, under any of its names; also any whose
    name has ``query`` at the start of a word ("Google" in "Google Analytics"), marked "text".
    Names are compared as a reader sees them (``lookalike.visible``: no invisible characters).
    A query of symbols alone ("%", "&") matches names that contain it as written."""
    query = visible(query)
    if not name_key(query):
        literal = collapse(query).casefold()
        if not literal.strip(" ,.;:-"):
            return []  # nothing to look for: "" or list punctuation would match nearly every row
        return [
            Match(item, identify(item.entity, table, places).company, "text")
            for item in listings
            if literal in visible(item.entity).casefold()
        ]
    q = identify(query, table, places)
    q_main = name_key(spellings(query)[0]) if spellings(query) else q.key
    word = re.compile(r"(?<!\w)" + re.escape(collapse(query)), re.IGNORECASE) if query.strip() else None
    out = []
    for item in listings:
        shown = visible(item.entity)
        it = identify(shown, table, places)
        written = spellings(shown)
        if written and name_key(written[0]) == q_main:
            how = "same name"
        elif q.key == it.key:
            how = f"alias of {it.company}"
        elif q.names & it.names:
            how = "one of the names it gives"
        elif word is not None and word.search(shown):
            how = "text"
        else:
            continue
        out.append(Match(item, it.company, how))
    return out


@dataclass(frozen=True, slots=True)
class Company:
    """One third party across vendors: the concentration report's row."""

    name: str
    vendors: tuple[str, ...]
    spellings: tuple[str, ...]
    countries: tuple[str, ...]
    unrecognised: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "company": self.name,
            "vendor_count": len(self.vendors),
            "vendors": list(self.vendors),
            "spellings": list(self.spellings),
            "countries": list(self.countries),
            "location_unrecognised": list(self.unrecognised),
        }


def concentration(listings: Sequence[Listing], table: AliasTable, places: Gazetteer) -> list[Company]:
    """Third parties by the number of vendors that list them, most first, with their countries."""
    groups: dict[str, list[tuple[Listing, Identity]]] = {}
    for item in listings:
        ident = identify(item.entity, table, places)
        groups.setdefault(ident.key, []).append((item, ident))
    out = []
    for members in groups.values():
        shown = [ident.company for _, ident in members]
        name = max(set(shown), key=lambda s: (shown.count(s), -len(s), s))
        codes: dict[str, None] = {}
        unread: dict[str, None] = {}
        for item, _ in members:
            loc = places.read(item.country)
            codes.update(dict.fromkeys(loc.places))
            unread.update(dict.fromkeys(loc.unread))
        vendors = tuple(sorted({m.vendor for m, _ in members}, key=str.casefold))
        spelled = tuple(sorted({collapse(m.entity) for m, _ in members}, key=str.casefold))
        out.append(Company(name, vendors, spelled, tuple(codes), tuple(unread)))
    out.sort(key=lambda c: (-len(c.vendors), c.name.casefold()))
    return out
