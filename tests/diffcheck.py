"""Applying a diff's changes to the old rows: a diff is complete when they rebuild the new rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from policy_watch.diff import entry_fields, norm, same_value
from policy_watch.models import Change, ChangeKind, Entry


def apply_changes(old: Sequence[Entry], changes: Sequence[Change]) -> list[Entry]:
    """Apply reported changes to ``old``.

    A change names a row by section and entity, not by position. Where two rows share a name,
    a change goes to the namesake whose cells fit the old values reported for it. Added rows
    carry only their section and name: a change list does not hold their cells.
    """
    rows = list(old)
    edits = [c for c in changes if c.kind is ChangeKind.CHANGED and c.entity and c.field != "section"]

    def fits(entity: str, section: str) -> Callable[[Entry], int]:
        mine = [c for c in edits if norm(c.entity) == norm(entity) and norm(c.section) == norm(section)]
        return lambda e: sum(
            same_value(c.field or "", entry_fields(e).get(c.field or "", ""), c.old or "") for c in mine
        )

    for c in changes:
        if c.kind is ChangeKind.REMOVED:
            fit = fits(c.entity, c.section)
            rows.pop(_find(rows, c.entity, _in_section(c.section), rank=fit, lowest=True))
    for c in changes:
        if c.entity == "" and c.field == "section":
            key = norm(c.old or "")
            rows = [replace(e, section=c.new or "") if norm(e.section) == key else e for e in rows]
        elif c.kind is ChangeKind.COLUMN_REMOVED:
            rows = [_drop_extra(e, c.field or "") if norm(e.section) == norm(c.section) else e for e in rows]
    # A move names the section the row was in as the page wrote it; if that heading was reworded
    # too, the row now sits under the new heading.
    reworded = {norm(c.old or ""): c.new or "" for c in changes if c.entity == "" and c.field == "section"}

    def before_move(section: str) -> str:
        return reworded.get(norm(section), section)

    # A renamed row that also moved is still under its old section when it is renamed.
    moved_from = {
        (norm(c.section), norm(c.entity)): before_move(c.old or "")
        for c in changes
        if c.kind is ChangeKind.CHANGED and c.entity and c.field == "section"
    }
    for c in changes:
        if c.kind is ChangeKind.RENAMED:
            where = moved_from.get((norm(c.section), norm(c.new or "")), c.section)
            i = _find(rows, c.old or "", _in_section(where), rank=fits(c.new or "", c.section), fallback=True)
            rows[i] = replace(rows[i], entity=c.new or "")
    for c in changes:
        if c.kind is ChangeKind.CHANGED and c.entity and c.field == "section":
            i = _find(
                rows,
                c.entity,
                _in_section(before_move(c.old or "")),
                rank=fits(c.entity, c.new or ""),
                fallback=True,
            )
            rows[i] = replace(rows[i], section=c.new or "")
    done: set[tuple[int, str]] = set()
    for c in edits:
        f = c.field or ""
        i = _find(
            rows,
            c.entity,
            _holds(c.section, f, c.old or ""),
            avoid={i for i, g in done if g == f},
            fallback=True,
        )
        done.add((i, f))
        rows[i] = _set_field(rows[i], f, c.new or "")
    rows += [Entry(c.section, c.entity) for c in changes if c.kind is ChangeKind.ADDED]
    return rows


def _find(
    rows: list[Entry],
    name: str,
    where: Callable[[Entry], bool],
    *,
    rank: Callable[[Entry], int] | None = None,
    avoid: set[int] | None = None,
    fallback: bool = False,
    lowest: bool = False,
) -> int:
    """The row a change is about: that name, matching ``where``, not in ``avoid``, best ``rank``."""
    named = [i for i, e in enumerate(rows) if norm(e.entity) == norm(name)]
    fitting = [i for i in named if where(rows[i])]
    pool = [i for i in fitting if i not in (avoid or set())] or fitting or (named if fallback else [])
    if not pool:
        raise KeyError(name)
    if rank is None:
        return pool[0]
    sign = -1 if lowest else 1
    return max(pool, key=lambda i: sign * rank(rows[i]))


def _in_section(section: str) -> Callable[[Entry], bool]:
    key = norm(section)
    return lambda e: norm(e.section) == key


def _holds(section: str, field: str, value: str) -> Callable[[Entry], bool]:
    key = norm(section)
    return lambda e: norm(e.section) == key and same_value(field, entry_fields(e).get(field, ""), value)


def _set_field(e: Entry, field: str, value: str) -> Entry:
    if field == "purpose":
        return replace(e, purpose=value)
    if field == "country":
        return replace(e, country=value)
    extra = dict(e.extra)
    extra[field] = value
    return replace(e, extra=tuple(extra.items()))


def _drop_extra(e: Entry, field: str) -> Entry:
    return replace(e, extra=tuple((k, v) for k, v in e.extra if k != field))
