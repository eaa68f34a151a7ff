"""A ``<table>`` as a grid of cell texts, with colspan and rowspan expanded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from selectolax.lexbor import LexborNode

from policy_watch.parse.html import collapse, node_text

_SECTION_TAGS = frozenset({"thead", "tbody", "tfoot"})
_MAX_SPAN = 1000


@dataclass(slots=True)
class Row:
    """One table row after span expansion."""

    cells: list[str]
    in_thead: bool = False
    all_th: bool = False
    note: bool = False  # a single cell spanning the whole table
    row_header_col: int | None = None  # column of a <th scope="row">
    nodes: tuple[LexborNode, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(self.cells)


def direct_rows(table: LexborNode) -> Iterator[tuple[LexborNode, bool]]:
    """The table's own rows (not those of nested tables), each with whether it sits in <thead>."""
    for child in table.iter():
        tag = child.tag
        if tag == "tr":
            yield child, False
        elif tag in _SECTION_TAGS:
            in_thead = tag == "thead"
            for tr in child.iter():
                if tr.tag == "tr":
                    yield tr, in_thead


def _span(cell: LexborNode, name: str) -> int:
    value = cell.attrs.get(name)
    if not value:
        return 1
    try:
        span = int(value.strip())
    except ValueError:
        return 1
    if span == 0 and name == "rowspan":
        return _MAX_SPAN  # rowspan=0: to the end of the table section
    return min(max(span, 1), _MAX_SPAN)


class _Expander:
    """Lays out rows with colspan/rowspan into a rectangular grid."""

    def __init__(self, spans: bool) -> None:
        self.spans = spans
        self.pending: dict[int, tuple[int, str]] = {}  # column -> (rows left, text)

    def _carry(self, out: list[str]) -> None:
        col = len(out)
        while col in self.pending:
            left, text = self.pending.pop(col)
            out.append(text)
            if left > 1:
                self.pending[col] = (left - 1, text)
            col += 1

    def row(self, tr: LexborNode, in_thead: bool) -> Row:
        out: list[str] = []
        nodes: list[LexborNode] = []
        all_th = True
        row_header_col: int | None = None
        colspan = 1
        for cell in tr.iter():
            tag = cell.tag
            if tag != "td" and tag != "th":
                continue
            if self.pending:
                self._carry(out)
            text = node_text(cell)
            if tag == "td":
                all_th = False
            elif row_header_col is None and cell.attrs.get("scope") == "row":
                row_header_col = len(out)
            nodes.append(cell)
            if not self.spans:
                out.append(text)
                continue
            colspan, rowspan = _span(cell, "colspan"), _span(cell, "rowspan")
            for _ in range(colspan):
                if rowspan > 1:
                    self.pending[len(out)] = (rowspan - 1, text)
                out.append(text)
        if self.pending:
            self._carry(out)
        note = len(nodes) == 1 and colspan > 1
        return Row(out, in_thead, all_th and bool(nodes), note, row_header_col, tuple(nodes))


def table_grid(table: LexborNode) -> list[Row]:
    """Every row of ``table`` padded to the same width; a spanning note row is flagged."""
    spans = table.css_first("[colspan], [rowspan]") is not None
    expander = _Expander(spans)
    rows = [expander.row(tr, in_thead) for tr, in_thead in direct_rows(table)]
    width = max((len(r.cells) for r in rows), default=0)
    for row in rows:
        if row.note and len(row.cells) < width:
            row.note = False  # spans only part of the table: a merged cell, not a note
        row.cells.extend([""] * (width - len(row.cells)))
    return rows


def is_bold_row(row: Row) -> bool:
    """Every non-empty cell is wholly bold: a header row written with <td><strong>."""
    seen = False
    for node in row.nodes:
        text = collapse(node.text())
        if not text:
            continue
        if " ".join(collapse(b.text()) for b in node.css("strong, b")) != text:
            return False
        seen = True
    return seen
