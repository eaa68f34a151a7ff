"""Entity-level diff of two parsed snapshots. Pure: values in, values out.

Sections are compared by their normalised heading, rows by (section, normalised entity name).
Rows that share a name are paired by their other fields. What is left over is explained, in
order, as a row moved to another section, a rename (the same name up to case, punctuation,
legal suffixes and word order), and only then as a removal or an addition. A reworded heading
over mostly the same rows is one change, and so is a column added or removed. Whitespace,
case, punctuation at the ends, markup and row order are never changes.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from policy_watch.lookalike import lookalike_notes
from policy_watch.models import Change, ChangeKind, Entry, ParsedPage
from policy_watch.text import LEGAL_SUFFIXES, collapse, words

Columns = tuple[tuple[str, tuple[str, ...]], ...]

_ENDS = re.compile(r"^[\W_]+|[\W_]+$")
# Words a name is compared without: legal forms anywhere in it, and "the".
_NOT_NAME_WORDS = LEGAL_SUFFIXES | {"the"}
_TIGHT = re.compile(r"\s+([,.;:!?)\]])")
_COUNTRY_SPLIT = re.compile(r"\s*(?:[,;/|&+]|\band\b|\n)\s*", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"^\s*(?:\[[^\]]*\]|<[^>]*>|\{[^}]*\}|tbd|tba|n/?a|-+|—)\s*$", re.IGNORECASE)
_BASE_FIELDS = ("purpose", "country")
_FILLER = {"and", "the"}
# Pairing rows that share a name (or a name core) scores every pair in their group: at most
# this many pairs per group, and per page (about a second of work); past it rows pair unscored.
MAX_GROUP_PAIRS = 10_000
MAX_PAGE_PAIRS = 200_000
_KIND_RANK = {
    k: i for i, k in enumerate(("removed", "renamed", "changed", "added", "column_added", "column_removed"))
}


# Memoised: a page's cells come back in its next reading, and sections, purposes and countries
# repeat from row to row.
@lru_cache(maxsize=1 << 14)
def norm(text: str) -> str:
    """Comparison key: NFKC, case-folded, punctuation and whitespace collapsed."""
    return " ".join(words(unicodedata.normalize("NFKC", text).casefold()))


def _shown(name: str) -> str:
    """A name as a reader sees it: whitespace collapsed, punctuation at the ends dropped."""
    return _ENDS.sub("", collapse(unicodedata.normalize("NFKC", name)))


@lru_cache(maxsize=1 << 14)
def name_core(name: str) -> tuple[str, ...]:
    """Words of a name without legal suffixes, sorted: 'Azure (Microsoft)' ~ 'Microsoft (Azure)'."""
    kept = [w for w in norm(name.replace(".", "")).split() if w not in _NOT_NAME_WORDS]
    return tuple(sorted(kept))


def same_value(field: str, a: str, b: str) -> bool:
    """Whether two cell values say the same: countries in any order, other cells up to case and spacing.

    Inner punctuation counts ('Customer PII, Customer Data' is not 'Customer PII Customer Data');
    punctuation at the ends and spaces before a comma do not.
    """
    if field == "country":
        return _countries(a) == _countries(b)
    return _cell(a) == _cell(b)


def _cell(text: str) -> str:
    text = collapse(unicodedata.normalize("NFKC", text).casefold())
    return _ENDS.sub("", _TIGHT.sub(r"\1", text))


def _countries(text: str) -> tuple[str, ...]:
    """The words of a location cell, each as often as it occurs, in sorted order: countries listed
    in another order, or separated by line breaks instead of commas ("Ireland Germany" from
    "Ireland<br>Germany"), are the same; "Virginia, West Virginia" is not "West Virginia"."""
    return tuple(
        sorted(w for part in _COUNTRY_SPLIT.split(text) for w in norm(part).split() if w not in _FILLER)
    )


def entry_fields(e: Entry) -> dict[str, str]:
    """A row's cells by field: purpose, country and its extra columns."""
    return {"purpose": e.purpose, "country": e.country, **e.extra_dict}


def _words(text: str) -> set[str]:
    return set(norm(text).split())


def _score(a: Entry, b: Entry) -> tuple[bool, int, float]:
    """How alike two rows are: the same name as shown, then equal fields, then shared words."""
    fa, fb = entry_fields(a), entry_fields(b)
    equal, overlap = 0, 0.0
    for k in fa.keys() | fb.keys():
        va, vb = fa.get(k, ""), fb.get(k, "")
        if same_value(k, va, vb):
            equal += 1
        elif (wa := _words(va)) and (wb := _words(vb)):
            overlap += len(wa & wb) / len(wa | wb)
    return _shown(a.entity) == _shown(b.entity), equal, overlap


@dataclass(frozen=True, slots=True)
class _Row:
    entry: Entry
    section: str  # normalised section key, after heading renames
    name: str  # normalised entity name


@dataclass(frozen=True, slots=True)
class _Fields:
    """Which fields rows may report: a column added or removed within a section is one change of
    its own, and a row moved between tables compares only the columns both tables have."""

    skip: dict[str, set[str]]  # per section key: columns added or removed there
    old: dict[str, set[str]]  # per section key (after heading renames): the fields its table has
    new: dict[str, set[str]]

    def compared(self, a: _Row, b: _Row, keys: Iterable[str]) -> list[str]:
        if a.section == b.section:
            ignore = self.skip.get(b.section, set())
            return [k for k in keys if k not in ignore]
        shared = self.old.get(a.section, set()) & self.new.get(b.section, set())
        return [k for k in keys if k in shared]

    def same_cells(self, a: _Row, b: _Row) -> bool:
        fa, fb = entry_fields(a.entry), entry_fields(b.entry)
        return all(
            same_value(k, fa.get(k, ""), fb.get(k, "")) for k in self.compared(a, b, fa.keys() | fb.keys())
        )


class _Budget:
    """How many row pairs may still be scored on this page. Rows that share a name (or a name
    core) are few on a real page; a page where thousands do, or that changed too much, pairs
    them without scoring (equal cells first, then in page order) or not at all."""

    def __init__(self, pairs: int) -> None:
        self.left = pairs

    def take(self, olds: int, news: int) -> bool:
        cost = olds * news
        if cost > MAX_GROUP_PAIRS or cost > self.left:
            return False
        self.left -= cost
        return True


def diff_pages(old: ParsedPage, new: ParsedPage) -> list[Change]:
    """``diff_entries`` of two pages' entries, with their columns and headers."""
    return diff_entries(
        old.entries, new.entries, old.columns, new.columns, old_headers=old.headers, new_headers=new.headers
    )


def diff_entries(
    old: Sequence[Entry],
    new: Sequence[Entry],
    old_columns: Columns = (),
    new_columns: Columns = (),
    *,
    old_headers: Columns = (),
    new_headers: Columns = (),
) -> list[Change]:
    """Changes that turn ``old`` into ``new``, entity by entity.

    ``old_headers``/``new_headers`` run parallel to the column lists with each column's header as
    the page wrote it: a column added or removed is reported by that text, else by its name.
    Time and memory grow with the number of rows (pairing is bounded by ``MAX_PAGE_PAIRS``).
    """
    old_keys = [(norm(e.section), norm(e.entity)) for e in old]
    new_keys = [(norm(e.section), norm(e.entity)) for e in new]
    old_text, new_text = _section_texts(old), _section_texts(new)
    headings = _section_renames(old_keys, new_keys)
    changes = [_heading_change(old_text.get(s, s), new_text.get(t, t)) for s, t in headings.items()]
    skip, column_changes = _column_changes(old, new, old_columns, new_columns, headings, new_text)
    if old_headers or new_headers:
        old_texts = _header_texts(old_columns, old_headers)
        new_texts = _header_texts(new_columns, new_headers)
        old_section = {t: s for s, t in headings.items()}
        column_changes = [_by_header_text(c, old_texts, new_texts, old_section) for c in column_changes]
    changes += column_changes
    fields = _Fields(skip, _section_fields(old, old_columns, headings), _section_fields(new, new_columns, {}))
    olds = [_Row(e, headings.get(s, s), n) for e, (s, n) in zip(old, old_keys, strict=True)]
    news = [_Row(e, s, n) for e, (s, n) in zip(new, new_keys, strict=True)]
    budget = _Budget(MAX_PAGE_PAIRS)
    pairs, olds, news = _pair(olds, news, lambda r: (r.section, r.name), budget)
    moved, olds, news = _pair(olds, news, lambda r: r.name, budget)
    renamed, olds, news = _pair_renames(olds, news, fields, budget)
    for a, b in [*pairs, *moved, *renamed]:
        changes += _row_changes(a, b, fields)
    notes = lookalike_notes([a.entry.entity for a in olds], [b.entry.entity for b in news])
    changes += [
        Change(ChangeKind.REMOVED, a.entry.section, a.entry.entity, note=notes.removed.get(a.entry.entity))
        for a in olds
    ]
    changes += [
        Change(ChangeKind.ADDED, b.entry.section, b.entry.entity, note=notes.added.get(b.entry.entity))
        for b in news
    ]
    return _ordered(changes, [norm(e.section) for e in new] + [norm(e.section) for e in old])


def _heading_change(old: str, new: str) -> Change:
    return Change(ChangeKind.CHANGED, new, "", "section", old, new)


def _section_texts(entries: Sequence[Entry]) -> dict[str, str]:
    """Section key -> the heading as the page first wrote it."""
    out: dict[str, str] = {}
    for e in entries:
        out.setdefault(norm(e.section), e.section)
    return out


def _section_fields(
    entries: Sequence[Entry], columns: Columns, headings: dict[str, str]
) -> dict[str, set[str]]:
    """Per section key: the fields its table has, by the parser's column list and by the cells
    its rows fill in (a list without column lists, or two tables under one heading)."""
    out: dict[str, set[str]] = defaultdict(set)
    for section, names in columns:
        key = norm(section)
        out[headings.get(key, key)].update(c for c in names if c != "entity")
    for e in entries:
        key = norm(e.section)
        have = out[headings.get(key, key)]
        if e.purpose.strip():
            have.add("purpose")
        if e.country.strip():
            have.add("country")
        have.update(k for k, _ in e.extra)
    return out


def _names_by_section(keys: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for section, name in keys:
        out.setdefault(section, set()).add(name)
    return out


def _section_renames(old: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Reworded headings, old key -> new key: most of the section's surviving rows sit under it now."""
    before, after = _names_by_section(old), _names_by_section(new)
    fresh = {t: i for i, t in enumerate(t for t in after if t not in before)}
    sections_of: dict[str, list[str]] = defaultdict(list)  # name -> the sections it stands in now
    for t, names in after.items():
        for name in names:
            sections_of[name].append(t)
    out: dict[str, str] = {}
    taken: set[str] = set()
    for s in (s for s in before if s not in after):
        survivors = [n for n in before[s] if n in sections_of]
        if not survivors or not fresh:
            continue
        overlaps = Counter(t for n in survivors for t in sections_of[n] if t in fresh)
        if not overlaps:
            continue
        t = max(overlaps, key=lambda t: (overlaps[t], -fresh[t]))
        overlap = overlaps[t]
        if (
            t not in taken
            and 2 * overlap > len(survivors)
            and 2 * overlap >= min(len(before[s]), len(after[t]))
        ):
            out[s] = t
            taken.add(t)
    return out


def _columns_by_section(columns: Columns) -> dict[str, set[str]]:
    return {norm(sec): {c for c in cols if c != "entity"} for sec, cols in columns}


def _extras_by_section(entries: Iterable[Entry]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        out[norm(e.section)].update(k for k, _ in e.extra)
    return out


def _column_changes(
    old: Sequence[Entry],
    new: Sequence[Entry],
    old_columns: Columns,
    new_columns: Columns,
    headings: dict[str, str],
    new_text: dict[str, str],
) -> tuple[dict[str, set[str]], list[Change]]:
    """Columns added or removed per section (one change each), and the fields rows must not report."""
    if old_columns and new_columns:
        oc, nc = _columns_by_section(old_columns), _columns_by_section(new_columns)
    else:
        oc, nc = _extras_by_section(old), _extras_by_section(new)
    skip: dict[str, set[str]] = defaultdict(set)
    changes: list[Change] = []
    for s, cols in oc.items():
        t = headings.get(s, s)
        if t not in nc:
            continue
        section = new_text.get(t, t)
        for col in sorted(nc[t] - cols):
            changes.append(Change(ChangeKind.COLUMN_ADDED, section, "", col))
        for col in sorted(cols - nc[t]):
            changes.append(Change(ChangeKind.COLUMN_REMOVED, section, "", col))
        skip[t] = nc[t] ^ cols
    return skip, changes


def _header_texts(columns: Columns, headers: Columns) -> dict[tuple[str, str], str]:
    """(normalised section, column name) -> the column's header text, where the page had one."""
    texts: dict[tuple[str, str], str] = {}
    for (section, names), (_, header) in zip(columns, headers, strict=False):
        for name, text in zip(names, header, strict=False):
            if text.strip():
                texts.setdefault((norm(section), name), collapse(text))
    return texts


def _by_header_text(
    change: Change,
    old_texts: dict[tuple[str, str], str],
    new_texts: dict[tuple[str, str], str],
    old_section: dict[str, str],
) -> Change:
    """A column change named by the column's header text: the new page's for an added column,
    the old page's (under the section's old heading) for a removed one."""
    section = norm(change.section)
    if change.kind is ChangeKind.COLUMN_ADDED:
        text = new_texts.get((section, change.field or ""))
    else:
        text = old_texts.get((old_section.get(section, section), change.field or ""))
    return replace(change, field=text) if text else change


Pairs = list[tuple[_Row, _Row]]


def _pair(
    olds: list[_Row],
    news: list[_Row],
    key: Callable[[_Row], Hashable],
    budget: _Budget,
    accept: Callable[[_Row, _Row], bool] | None = None,
) -> tuple[Pairs, list[_Row], list[_Row]]:
    """Pair rows with equal keys; within a key, the most alike rows first. Only rows in the same
    group are ever compared, so the work grows with the rows, not with their product."""
    groups_new: dict[Hashable, list[_Row]] = defaultdict(list)
    for b in news:
        groups_new[key(b)].append(b)
    groups_old: dict[Hashable, list[_Row]] = defaultdict(list)
    for a in olds:
        groups_old[key(a)].append(a)
    pairs: Pairs = []
    for k, group in groups_old.items():
        if (candidates := groups_new.get(k)) is not None:
            pairs += _best_pairs(group, candidates, budget, accept)
    return _rest(pairs, olds, news)


def _rest(pairs: Pairs, olds: list[_Row], news: list[_Row]) -> tuple[Pairs, list[_Row], list[_Row]]:
    used_o = {id(a) for a, _ in pairs}
    used_n = {id(b) for _, b in pairs}
    return pairs, [a for a in olds if id(a) not in used_o], [b for b in news if id(b) not in used_n]


def _best_pairs(
    olds: list[_Row], news: list[_Row], budget: _Budget, accept: Callable[[_Row, _Row], bool] | None = None
) -> Pairs:
    """Greedy best-first pairing by likeness; ties keep page order. A group too big for the
    budget pairs rows with equal cells, then (when any two may pair) the rest in page order."""
    if len(olds) == 1 and len(news) == 1 and accept is None:
        return [(olds[0], news[0])]
    if not budget.take(len(olds), len(news)):
        return _unscored_pairs(olds, news, accept)
    ranked = sorted(
        (
            (_score(a.entry, b.entry), -i, -j, i, j)
            for i, a in enumerate(olds)
            for j, b in enumerate(news)
            if accept is None or accept(a, b)
        ),
        reverse=True,
    )
    used_o: set[int] = set()
    used_n: set[int] = set()
    pairs: Pairs = []
    for *_, i, j in ranked:
        if i not in used_o and j not in used_n:
            used_o.add(i)
            used_n.add(j)
            pairs.append((olds[i], news[j]))
    return pairs


_MAX_UNSCORED_PASSES = 8  # fields left out one at a time when pairing without scores


def _cells_key(e: Entry, without: str | None = None) -> tuple[tuple[str, object], ...]:
    """Rows with equal keys have the same cells (``same_value`` on every field but ``without``)."""
    return tuple(
        sorted(
            (k, _countries(v) if k == "country" else _cell(v))
            for k, v in entry_fields(e).items()
            if v.strip() and k != without
        )
    )


def _unscored_pairs(olds: list[_Row], news: list[_Row], accept: Callable[[_Row, _Row], bool] | None) -> Pairs:
    """Rows with equal cells, then rows equal but for one field; then, when any two may pair
    (one name), the rest in page order."""
    fields = sorted({k for r in [*olds, *news] for k in entry_fields(r.entry)})
    passes: list[str | None] = [None, *fields[:_MAX_UNSCORED_PASSES]]
    pairs: Pairs = []
    for without in passes if accept is None else [None]:
        waiting: dict[tuple[tuple[str, object], ...], list[_Row]] = defaultdict(list)
        for b in reversed(news):
            waiting[_cells_key(b.entry, without)].append(b)
        found: Pairs = []
        for a in olds:
            same = waiting.get(_cells_key(a.entry, without))
            if same and (accept is None or accept(a, same[-1])):
                found.append((a, same.pop()))
        pairs += found
        _, olds, news = _rest(found, olds, news)
    if accept is not None:
        return pairs
    return pairs + list(zip(olds, news, strict=False))


def _pair_renames(
    olds: list[_Row], news: list[_Row], fields: _Fields, budget: _Budget
) -> tuple[Pairs, list[_Row], list[_Row]]:
    """Renames: close names (equal up to case, punctuation, legal suffixes and word order).

    In the same section that is enough; across sections the row must also be otherwise unchanged
    in the columns both tables have. Candidates are indexed by their name's core words.
    """
    cores = {id(r): name_core(r.entry.entity) for r in [*olds, *news]}
    named_old = [a for a in olds if cores[id(a)]]
    named_new = [b for b in news if cores[id(b)]]
    same, named_old, named_new = _pair(named_old, named_new, lambda r: (r.section, cores[id(r)]), budget)
    across, _, _ = _pair(named_old, named_new, lambda r: cores[id(r)], budget, accept=fields.same_cells)
    return _rest(same + across, olds, news)


def _row_changes(a: _Row, b: _Row, fields: _Fields) -> list[Change]:
    ea, eb = a.entry, b.entry
    if ea == eb and a.section == b.section:
        return []  # most rows of a page, and the cheapest to tell
    out: list[Change] = []
    if _shown(ea.entity) != _shown(eb.entity):
        out.append(Change(ChangeKind.RENAMED, eb.section, eb.entity, "entity", ea.entity, eb.entity))
    if a.section != b.section:
        out.append(Change(ChangeKind.CHANGED, eb.section, eb.entity, "section", ea.section, eb.section))
    fa, fb = entry_fields(ea), entry_fields(eb)
    keys = [*_BASE_FIELDS, *sorted((fa.keys() | fb.keys()) - set(_BASE_FIELDS))]
    for key in fields.compared(a, b, keys):
        va, vb = fa.get(key, ""), fb.get(key, "")
        if not same_value(key, va, vb):
            out.append(Change(ChangeKind.CHANGED, eb.section, eb.entity, key, collapse(va), collapse(vb)))
    return out


def _ordered(changes: list[Change], section_order: list[str]) -> list[Change]:
    """Page order of sections, then section-wide changes, then entity; a row's changes stay together."""
    rank: dict[str, int] = {}
    for s in section_order:
        rank.setdefault(s, len(rank))

    def key(c: Change) -> tuple[int, int, str, int]:
        kind = _KIND_RANK[c.kind.value] if c.kind in (ChangeKind.ADDED, ChangeKind.REMOVED) else 0
        return (rank.get(norm(c.section), len(rank)), 0 if c.entity == "" else 1, norm(c.entity), kind)

    return sorted(changes, key=key)


def _is_placeholder(name: str) -> bool:
    """Template rows such as '[Add cloud hosting provider]' or 'TBD' name no entity."""
    return bool(_PLACEHOLDER.match(name)) or not norm(name)


def is_suspect(old: Sequence[Entry], new: Sequence[Entry], ratio: float = 0.5) -> bool:
    """The guard: a page that lost every entity, or more than ``ratio`` of them at once.

    A list that lost more than ``ratio`` of its entities is still taken as real when it was
    visibly edited in place: the rows that stayed make up most of the new list, and the page
    also gained rows or rewrote the rows it kept. A page that only lost rows (cut short, a
    table the parser no longer finds) stays suspect. Placeholder rows of a draft do not count.
    """
    before = {name_core(e.entity) for e in old if not _is_placeholder(e.entity)}
    if not before:
        return False
    if not new:
        return True
    after = {name_core(e.entity) for e in new}
    lost = before - after
    if len(lost) <= ratio * len(before):
        return False
    kept = before & after
    if not kept or 2 * len(kept) <= len(after):
        return True
    return not (after - before) and not _rewrote(old, new, kept)


def _rewrote(old: Sequence[Entry], new: Sequence[Entry], kept: set[tuple[str, ...]]) -> bool:
    """Whether a kept row's cells changed: compared with the rows of the same name in the same
    section (one name can stand in several sections with different cells)."""
    was: dict[tuple[str, tuple[str, ...]], list[dict[str, str]]] = defaultdict(list)
    for e in old:
        was[(e.section, name_core(e.entity))].append(entry_fields(e))
    for e in new:
        core = name_core(e.entity)
        candidates = was.get((e.section, core))
        if core not in kept or not candidates:
            continue
        now = entry_fields(e)
        if not any(
            all(same_value(k, b.get(k, ""), now.get(k, "")) for k in b.keys() | now.keys())
            for b in candidates
        ):
            return True
    return False
