"""Subprocessor tables: every ``<table>`` whose header (or shape) names an entity column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import itemgetter

from selectolax.lexbor import LexborNode

from policy_watch.models import Entry, ParseRules
from policy_watch.parse.base import LayoutResult
from policy_watch.parse.budget import NO_DEADLINE, Deadline
from policy_watch.parse.context import mentions_subprocessors
from policy_watch.parse.document import Page
from policy_watch.parse.grid import Row, is_bold_row, table_grid
from policy_watch.parse.headers import ColumnMap, looks_like_other_table, map_columns, positional_map
from policy_watch.parse.html import element_children, heading_text
from policy_watch.parse.names import has_legal_form, is_cell_name

_HEADER_SEARCH_ROWS = 4
_ARCHIVE_WORDS = re.compile(
    r"previous|prior|earlier|former|archived?|old(?:er)? version|history", re.IGNORECASE
)
_MAX_POSITIONAL_COLUMNS = 6


@dataclass(frozen=True, slots=True)
class TableRead:
    entries: tuple[Entry, ...]
    columns: tuple[str, ...]
    headers: tuple[str, ...]  # what the first rows said, for the error message
    header_texts: tuple[str, ...] = ()  # per column: the header row's text, "" without one


def _caption(table: LexborNode) -> str:
    for child in element_children(table):
        if child.tag == "caption":
            return heading_text(child)
    return ""


def _is_header_like(row: Row) -> bool:
    return row.in_thead or row.all_th or is_bold_row(row)


def _row_header_hint(rows: list[Row], header: Row) -> ColumnMap | None:
    """Header row without an entity label, body rows led by <th scope="row">: that column is the entity."""
    cols = {r.row_header_col for r in rows if r is not header and not r.empty}
    if len(cols) != 1:
        return None
    col = cols.pop()
    if col is None:
        return None
    labels = list(header.cells)
    labels[col] = "entity"
    return map_columns(labels)


def find_header(rows: list[Row]) -> tuple[int, ColumnMap] | None:
    """The header row and its column map; None when no leading row names an entity column."""
    for index, row in enumerate(rows[:_HEADER_SEARCH_ROWS]):
        if row.empty or row.note:
            continue
        if looks_like_other_table(row.cells):
            return None
        column_map = map_columns(row.cells) or _row_header_hint(rows, row)
        if column_map is not None:
            return index, column_map
        if not _is_header_like(row):
            return None
    return None


def _positional(rows: list[Row], context: str) -> ColumnMap | None:
    """No header at all: read by position only when the first column reads like company names.

    ``context`` (the section and page title) must speak of subprocessors, or the names must
    mostly carry a company suffix (Inc., GmbH, ...).
    """
    body = [r for r in rows if not r.empty and not r.note]
    if len(body) < 2 or not 2 <= len(body[0].cells) <= _MAX_POSITIONAL_COLUMNS:
        return None
    names = [r.cells[0] for r in body]
    good = sum(is_cell_name(n) for n in names)
    if good < 0.8 * len(names) or len(set(names)) < 0.8 * len(names):
        return None
    if any(looks_like_other_table(r.cells) for r in body[:1]):
        return None
    companies = sum(has_legal_form(n) for n in names)
    if not mentions_subprocessors(context) and companies < 0.5 * len(names):
        return None
    return positional_map(len(body[0].cells))


def _entries(rows: list[Row], column_map: ColumnMap, section: str, header: list[str] | None) -> list[Entry]:
    extras = column_map.extras
    entity_col, purpose_col, country_col = column_map.entity, column_map.purpose, column_map.country
    names = tuple(name for _, name in extras)
    pick = itemgetter(*(i for i, _ in extras)) if extras else None  # one extra: a value, else a tuple
    entries: list[Entry] = []
    append = entries.append
    for row in rows:
        cells = row.cells
        entity = cells[entity_col]
        if not entity or row.note or cells == header:
            continue
        if pick is None:
            extra: tuple[tuple[str, str], ...] = ()
        elif len(names) == 1:
            extra = ((names[0], pick(cells)),)
        else:
            extra = tuple(zip(names, pick(cells), strict=True))
        append(
            Entry(
                section,
                entity,
                cells[purpose_col] if purpose_col is not None else "",
                cells[country_col] if country_col is not None else "",
                extra,
            )
        )
    return entries


def read_table(
    table: LexborNode, section: str, title: str = "", deadline: Deadline = NO_DEADLINE
) -> TableRead:
    rows = table_grid(table, deadline)
    first = next((r for r in rows if not r.empty and not r.note), None)
    seen = tuple(first.cells) if first else ()
    found = find_header(rows)
    if found is not None:
        index, column_map = found
        entries = _entries(rows[index + 1 :], column_map, section, rows[index].cells)
        texts = tuple(rows[index].cells)
    elif (positional := _positional(rows, f"{section} {title}")) is not None and not _nested_table(table):
        column_map = positional
        entries = _entries(rows, column_map, section, None)
        texts = ("",) * len(column_map.names)
    else:
        return TableRead((), (), seen)
    return TableRead(tuple(entries), column_map.names, seen, texts)


def _in_archive(table: LexborNode) -> bool:
    """Inside a ``<details>`` that holds an earlier version of the list (Zendesk embeds one)."""
    parent = table.parent
    while parent is not None:
        if parent.tag == "details":
            summary = parent.css_first("summary")
            if summary is not None and _ARCHIVE_WORDS.search(summary.text()):
                return True
        parent = parent.parent
    return False


def _nested_table(table: LexborNode) -> bool:
    return len(table.css("table")) > 1  # css() matches the node itself too


def _seen_message(count: int, headers: list[str]) -> str:
    tables = f"{count} table" + ("s" if count != 1 else "")
    if not headers:
        return f"{tables}, none with an entity column"
    return f"{tables}, none with an entity column; headers seen: {', '.join(headers[:12])}"


def read_tables(page: Page, rules: ParseRules) -> LayoutResult:
    """Layout "tables": every table with an entity column, in document order."""
    entries: list[Entry] = []
    columns: dict[str, tuple[str, ...]] = {}
    header_texts: dict[str, tuple[str, ...]] = {}
    headers: list[str] = []
    count = 0
    for table, heading in page.tables:
        page.deadline.check()
        count += 1
        if _in_archive(table):
            continue
        section = _caption(table) or heading
        read = read_table(table, section, page.title, page.deadline)
        if read.entries:
            entries.extend(read.entries)
            if section not in columns:
                columns[section] = read.columns
                header_texts[section] = read.header_texts
        headers.extend(h for h in read.headers if h and h not in headers)
    if entries:
        return LayoutResult(tuple(entries), tuple(columns.items()), tuple(header_texts.items()))
    return LayoutResult(seen=(_seen_message(count, headers),) if count else ())
