"""A ``<table>`` as a grid of cell texts, with colspan and rowspan expanded."""

from __future__ import annotations

from collections.abc import Iterator

from selectolax.lexbor import LexborHTMLParser, LexborNode

from policy_watch.parse.budget import NO_DEADLINE, Deadline
from policy_watch.parse.html import GLUED as _GLUED
from policy_watch.parse.html import MARK, glued_text, node_text
from policy_watch.text import collapse

_SECTION_TAGS = frozenset({"thead", "tbody", "tfoot"})
_CELL_TAGS = frozenset({"td", "th"})
_MAX_SPAN = 1000
_SPACE_MARK, _MARK_SPACE = " " + MARK, MARK + " "
# Lexbor's numeric ids of <td> and <th>: comparing ints is cheaper than comparing tag names.
_CELL_TAG_IDS = frozenset(
    node.tag_id for node in LexborHTMLParser("<table><tr><td></td><th></th></tr></table>").css("td, th")
)
_TH_TAG_ID = next(node.tag_id for node in LexborHTMLParser("<table><tr><th></th></tr></table>").css("th"))
HEAD_ROWS = 8  # rows whose cell nodes are kept for the header checks


class Row:
    """One table row after span expansion.

    ``nodes`` are its own cells, kept for the header checks of the first ``HEAD_ROWS`` rows only:
    a node object per cell of a 200,000-row table would cost more memory than the cell texts.
    """

    __slots__ = ("all_th", "cells", "in_thead", "node_count", "nodes", "note", "row_header_col")

    def __init__(
        self, cells: list[str], in_thead: bool, nodes: list[LexborNode], starts: list[int] | None = None
    ):
        self.cells = cells
        self.in_thead = in_thead
        self.nodes = nodes
        self.note = False  # a single cell spanning the whole table
        th = [index for index, node in enumerate(nodes) if node.tag_id == _TH_TAG_ID]
        self.all_th = bool(nodes) and len(th) == len(nodes)
        # Grid column of the row's <th scope="row">, if it has one.
        self.row_header_col: int | None = next(
            ((starts[i] if starts is not None else i) for i in th if nodes[i].attrs.get("scope") == "row"),
            None,
        )

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

    def __init__(self) -> None:
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
        starts: list[int] = []
        colspan = 1
        for cell in tr.iter():
            if cell.tag not in _CELL_TAGS:
                continue
            self._carry(out)
            text = node_text(cell)
            nodes.append(cell)
            starts.append(len(out))
            colspan, rowspan = _span(cell, "colspan"), _span(cell, "rowspan")
            for _ in range(colspan):
                if rowspan > 1:
                    self.pending[len(out)] = (rowspan - 1, text)
                out.append(text)
        self._carry(out)
        row = Row(out, in_thead, nodes, starts)
        row.note = len(nodes) == 1 and colspan > 1
        return row


def _plain_rows(table: LexborNode, deadline: Deadline) -> list[Row]:
    """The rows of a table without spans; the common case, kept lean (``node_text`` inlined:
    most cells are one text node, or inline markup next to spaces, where the marks change nothing)."""
    rows: list[Row] = []
    cell_ids = _CELL_TAG_IDS
    mark, glued = MARK, _GLUED
    for tr, in_thead in direct_rows(table):
        deadline.check()
        nodes = [cell for cell in tr.iter() if cell.tag_id in cell_ids]
        texts: list[str] = []
        for cell in nodes:
            raw = cell.text(separator=mark)
            if mark in raw:
                # Marks next to a space ("Japan, <b>Germany</b>") go without the regex: dropping
                # them changes nothing, and leaves the status of the other marks as it was.
                raw = raw.replace(_SPACE_MARK, " ")
                if mark in raw:
                    raw = raw.replace(_MARK_SPACE, " ")
                    if mark in raw:
                        raw = raw.replace(mark, "") if glued.search(raw) is None else glued_text(cell, raw)
            # Printable means no whitespace but " ": without doubled or outer spaces it is collapsed.
            if raw.isprintable() and "  " not in raw and raw.strip(" ") == raw:
                texts.append(raw)
            else:
                texts.append(" ".join(raw.split()))
        row = Row(texts, in_thead, nodes)
        if len(rows) >= HEAD_ROWS:
            row.nodes = []
        rows.append(row)
    return rows


def table_grid(table: LexborNode, deadline: Deadline = NO_DEADLINE) -> list[Row]:
    """Every row of ``table`` padded to the same width; a spanning note row is flagged."""
    if table.css_first("[colspan], [rowspan]") is None:
        rows = _plain_rows(table, deadline)
    else:
        expander = _Expander()
        rows = []
        for tr, in_thead in direct_rows(table):
            deadline.check()
            row = expander.row(tr, in_thead)
            if len(rows) >= HEAD_ROWS:
                row.nodes = []
            rows.append(row)
    width = max([len(r.cells) for r in rows], default=0)
    for row in rows:
        if len(row.cells) < width:
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
