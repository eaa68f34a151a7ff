"""Entity-level diff of two parsed snapshots. Pure: values in, values out.

Rows are paired by (section, normalised entity name); repeated names are paired by their
other fields. What is left over is explained, in order, as a section move, a rename, and
only then as a removal or an addition. Differences of whitespace, case, punctuation at the
ends, markup or row order are not changes.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from policy_watch.models import Change, ChangeKind, Entry

Columns = tuple[tuple[str, tuple[str, ...]], ...]

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
_LEGAL = {
    "inc", "incorporated", "llc", "ltd", "limited", "gmbh", "corp", "corporation", "co", "company",
    "sa", "sas", "sarl", "bv", "nv", "plc", "pty", "pte", "ag", "ab", "as", "oy", "srl", "spa", "lp",
    "llp", "kk", "kabushiki", "kaisha", "the",
}  # fmt: skip
_COUNTRY_SPLIT = re.compile(r"\s*(?:[,;/|&+]|\band\b|\n)\s*", re.IGNORECASE)
_BASE_FIELDS = ("purpose", "country")


def norm(text: str) -> str:
    """Comparison key: NFKC, case-folded, punctuation and whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def _display(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _name_core(name: str) -> tuple[str, ...]:
    """Words of a name without legal suffixes, sorted: 'Azure (Microsoft)' ~ 'Microsoft (Azure)'."""
    words = [w for w in norm(name).split() if w not in _LEGAL]
    return tuple(sorted(words))


def same_value(field: str, a: str, b: str) -> bool:
    if field == "country":
        return _countries(a) == _countries(b)
    return norm(a) == norm(b)


def _countries(text: str) -> frozenset[str]:
    return frozenset(n for part in _COUNTRY_SPLIT.split(text) if (n := norm(part)))


def _fields(e: Entry) -> dict[str, str]:
    return {"purpose": e.purpose, "country": e.country, **e.extra_dict}


def _score(a: Entry, b: Entry) -> int:
    fa, fb = _fields(a), _fields(b)
    return sum(1 for k in fa.keys() | fb.keys() if same_value(k, fa.get(k, ""), fb.get(k, "")))


def _columns_of(columns: Columns, entries: Sequence[Entry]) -> dict[str, set[str]]:
    if columns:
        return {sec: {c for c in cols if c != "entity"} for sec, cols in columns}
    out: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        out[e.section].update(k for k, _ in e.extra)
    return out


def diff_entries(
    old: Sequence[Entry],
    new: Sequence[Entry],
    old_columns: Columns = (),
    new_columns: Columns = (),
) -> list[Change]:
    """Changes that turn ``old`` into ``new``, entity by entity."""
    changes: list[Change] = []
    renamed_sections = _section_renames(old, new)
    for old_sec, new_sec in renamed_sections.items():
        changes.append(Change(ChangeKind.CHANGED, new_sec, "", "section", old_sec, new_sec))
    old = [replace(e, section=renamed_sections.get(e.section, e.section)) for e in old]
    oc = _columns_of(old_columns, old)
    nc = _columns_of(new_columns, new)
    skip: dict[str, set[str]] = defaultdict(set)
    for sec in oc.keys() & nc.keys():
        oc_sec = {renamed_sections.get(sec, sec)}
        del oc_sec
        for col in sorted(nc[sec] - oc[sec]):
            changes.append(Change(ChangeKind.COLUMN_ADDED, sec, "", col))
            skip[sec].add(col)
        for col in sorted(oc[sec] - nc[sec]):
            changes.append(Change(ChangeKind.COLUMN_REMOVED, sec, "", col))
            skip[sec].add(col)

    pairs, old_left, new_left = _pair_same_key(old, new)
    for a, b in pairs:
        changes.extend(_row_changes(a, b, skip))
    changes.extend(_moves_and_renames(old_left, new_left, skip))
    return _ordered(changes, [e.section for e in new] + [e.section for e in old])


def _section_renames(old: Sequence[Entry], new: Sequence[Entry]) -> dict[str, str]:
    """A heading reworded over the same rows: old section -> new section."""
    old_secs = _keys_by_section(old)
    new_secs = _keys_by_section(new)
    gone = [s for s in old_secs if s not in new_secs]
    fresh = [s for s in new_secs if s not in old_secs]
    out: dict[str, str] = {}
    for s in gone:
        for t in fresh:
            a, b = old_secs[s], new_secs[t]
            overlap = len(a & b)
            if t not in out.values() and overlap >= max(1, 0.8 * max(len(a), len(b))):
                out[s] = t
                break
    return out


def _keys_by_section(entries: Iterable[Entry]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in entries:
        out.setdefault(e.section, set()).add(norm(e.entity))
    return out


def _pair_same_key(
    old: Sequence[Entry], new: Sequence[Entry]
) -> tuple[list[tuple[Entry, Entry]], list[Entry], list[Entry]]:
    groups_old: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    groups_new: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for e in old:
        groups_old[(e.section, norm(e.entity))].append(e)
    for e in new:
        groups_new[(e.section, norm(e.entity))].append(e)
    pairs: list[tuple[Entry, Entry]] = []
    old_left: list[Entry] = []
    new_left: list[Entry] = []
    for key, olds in groups_old.items():
        news = list(groups_new.get(key, []))
        p, ol, nl = _best_pairs(olds, news)
        pairs += p
        old_left += ol
        new_left += nl
    for key, news in groups_new.items():
        if key not in groups_old:
            new_left += news
    return pairs, old_left, new_left


def _best_pairs(
    olds: list[Entry], news: list[Entry]
) -> tuple[list[tuple[Entry, Entry]], list[Entry], list[Entry]]:
    """Greedy best-first pairing by the number of equal fields (groups are tiny)."""
    if len(olds) == 1 and len(news) == 1:
        return [(olds[0], news[0])], [], []
    cands = sorted(
        ((-_score(a, b), i, j) for i, a in enumerate(olds) for j, b in enumerate(news)),
    )
    used_o: set[int] = set()
    used_n: set[int] = set()
    pairs: list[tuple[Entry, Entry]] = []
    for _, i, j in cands:
        if i in used_o or j in used_n:
            continue
        used_o.add(i)
        used_n.add(j)
        pairs.append((olds[i], news[j]))
    old_left = [a for i, a in enumerate(olds) if i not in used_o]
    new_left = [b for j, b in enumerate(news) if j not in used_n]
    return pairs, old_left, new_left


def _row_changes(a: Entry, b: Entry, skip: dict[str, set[str]]) -> list[Change]:
    out: list[Change] = []
    if _display(a.entity) != _display(b.entity):
        out.append(Change(ChangeKind.RENAMED, b.section, b.entity, "entity", a.entity, b.entity))
    if a.section != b.section:
        out.append(Change(ChangeKind.CHANGED, b.section, b.entity, "section", a.section, b.section))
    fa, fb = _fields(a), _fields(b)
    ignore = skip.get(b.section, set()) | skip.get(a.section, set())
    for key in [*_BASE_FIELDS, *sorted((fa.keys() | fb.keys()) - set(_BASE_FIELDS))]:
        if key in ignore:
            continue
        va, vb = fa.get(key, ""), fb.get(key, "")
        if not same_value(key, va, vb):
            out.append(Change(ChangeKind.CHANGED, b.section, b.entity, key, va, vb))
    return out


def _moves_and_renames(old_left: list[Entry], new_left: list[Entry], skip: dict[str, set[str]]) -> list[Change]:
    out: list[Change] = []
    # A row that moved to another section keeps its name.
    by_key: dict[str, list[Entry]] = defaultdict(list)
    for e in new_left:
        by_key[norm(e.entity)].append(e)
    still_old: list[Entry] = []
    for a in old_left:
        cands = by_key.get(norm(a.entity))
        if cands:
            b = max(cands, key=lambda c: _score(a, c))
            cands.remove(b)
            out.extend(_row_changes(a, b, skip))
        else:
            still_old.append(a)
    still_new = [e for es in by_key.values() for e in es]
    # A renamed entity: close name, same section, other fields unchanged.
    remaining_new = list(still_new)
    for a in still_old:
        match = next((b for b in remaining_new if _is_rename(a, b)), None)
        if match is None:
            out.append(Change(ChangeKind.REMOVED, a.section, a.entity))
            continue
        remaining_new.remove(match)
        out.extend(_row_changes(a, match, skip))
    out.extend(Change(ChangeKind.ADDED, b.section, b.entity) for b in remaining_new)
    return out


def _is_rename(a: Entry, b: Entry) -> bool:
    if a.section != b.section:
        return False
    fa, fb = _fields(a), _fields(b)
    if any(not same_value(k, fa.get(k, ""), fb.get(k, "")) for k in fa.keys() | fb.keys()):
        return False
    ca, cb = _name_core(a.entity), _name_core(b.entity)
    return bool(ca) and ca == cb


def _ordered(changes: list[Change], section_order: list[str]) -> list[Change]:
    rank: dict[str, int] = {}
    for s in section_order:
        rank.setdefault(s, len(rank))
    return sorted(changes, key=lambda c: (rank.get(c.section, len(rank)), c.entity == "" and -1 or 0, norm(c.entity)))


def is_suspect(old: Sequence[Entry], new: Sequence[Entry], ratio: float = 0.5) -> bool:
    """The guard: a page that lost every entity, or more than ``ratio`` of them at once."""
    if not old:
        return False
    if not new:
        return True
    before = {norm(e.entity) for e in old}
    after = {norm(e.entity) for e in new}
    return len(before - after) > ratio * len(before)


def apply_changes(old: Sequence[Entry], changes: Sequence[Change]) -> list[Entry]:
    """Apply reported changes to ``old`` (used to check the diff is complete)."""
    rows = list(old)
    for c in changes:
        if c.entity == "" and c.field == "section" and c.old is not None and c.new is not None:
            rows = [replace(e, section=c.new) if e.section == c.old else e for e in rows]
    for c in changes:
        if c.kind is ChangeKind.ADDED or c.entity == "":
            continue
        if c.kind is ChangeKind.REMOVED:
            idx = _find(rows, c.section, c.entity)
            rows.pop(idx)
    for c in changes:
        if c.kind not in (ChangeKind.CHANGED, ChangeKind.RENAMED) or c.entity == "":
            continue
        idx = _find_for_change(rows, c)
        e = rows[idx]
        if c.field == "entity":
            rows[idx] = replace(e, entity=c.new or "")
        elif c.field == "section":
            rows[idx] = replace(e, section=c.new or "")
        elif c.field in _BASE_FIELDS:
            rows[idx] = replace(e, **{c.field: c.new or ""})
        else:
            extra = dict(e.extra)
            extra[c.field or ""] = c.new or ""
            rows[idx] = replace(e, extra=tuple(extra.items()))
    return rows


def _find(rows: list[Entry], section: str, entity: str) -> int:
    for i, e in enumerate(rows):
        if e.section == section and e.entity == entity:
            return i
    raise KeyError((section, entity))


def _find_for_change(rows: list[Entry], c: Change) -> int:
    for i, e in enumerate(rows):
        name = c.old if c.field == "entity" else c.entity
        if norm(e.entity) != norm(name or ""):
            continue
        if c.field == "section":
            if e.section == c.old:
                return i
            continue
        value = _fields(e).get(c.field or "", "") if c.field not in ("entity",) else e.entity
        if value == (c.old or "") or c.field == "entity":
            return i
    raise KeyError((c.section, c.entity, c.field))
