"""A PDF list as an HTML document the layouts read like any page (pdfplumber lives here).

Pure: the PDF's bytes in, HTML text out. Ruled tables come from pdfplumber's table finder; a
page without ruling is read by the columns its header line sets out. A table that runs over
several pages becomes one table: a header repeated at the top of each page is dropped, and a row
whose entity cell is empty continues the row before it (a cell wrapped over a page or a line).
Text outside tables becomes paragraphs, lines in a larger font headings, so the date ("Last
updated ...", "Published: ...") and the sections read as they do on a web page.

A PDF with no text layer (a scan), one that needs a password, and one over the size limits
(``MAX_PAGES``, ``MAX_STREAM_BYTES``: a small file can unpack into gigabytes) is a ParseError.
"""

from __future__ import annotations

import html
import io
import re
import statistics
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pdfplumber
from pdfminer.pdfdocument import PDFPasswordIncorrect
from pdfminer.pdftypes import resolve1
from pdfplumber.utils.exceptions import PdfminerException

from policy_watch.errors import ParseError
from policy_watch.parse.headers import map_columns
from policy_watch.text import collapse

MAX_PAGES = 1000
MAX_STREAM_BYTES = 64 * 1024 * 1024  # one stream, unpacked
MAX_TOTAL_BYTES = 256 * 1024 * 1024  # every stream together, unpacked
_STREAM = re.compile(rb"/FlateDecode.{0,200}?>>\s*stream\r?\n", re.S)
_HEADING_RATIO = 1.15  # a line this much larger than the body text is a heading
_LINE_TOLERANCE = 3.0  # points: words this close in height are on one line
_COLUMN_GAP = 12.0
_BREAK_RATIO = 2.5  # points between two words that belong to different cells of a header line


@dataclass
class _Table:
    rows: list[list[str]]
    width: int
    entity: int = 0
    header: list[str] = field(default_factory=list)


def pdf_to_html(body: bytes, source: str | None = None) -> str:
    """The PDF as HTML: headings, paragraphs and tables in reading order."""
    check_streams(body, source)
    try:
        pdf = pdfplumber.open(io.BytesIO(body))
    except PdfminerException as e:
        cause = e.args[0] if e.args else e
        if isinstance(cause, PDFPasswordIncorrect):
            raise ParseError(
                "the PDF is encrypted and needs a password: it cannot be read", source=source
            ) from None
        raise ParseError(f"not a readable PDF: {cause!r}", source=source) from None
    except PDFPasswordIncorrect:
        raise ParseError(
            "the PDF is encrypted and needs a password: it cannot be read", source=source
        ) from None
    with pdf:
        count = page_count(pdf)
        if count > MAX_PAGES:
            raise ParseError(f"the PDF has {count} pages (limit {MAX_PAGES}): not read", source=source)
        parts: list[str] = []
        chars = 0
        table: _Table | None = None
        for page in pdf.pages:
            chars += len(page.chars)
            table = _page_parts(page, parts, table)
            page.close()  # frees the page's parsed objects: memory stays flat over long documents
        if table is not None:
            parts.append(_table_html(table))
    if chars == 0:
        raise ParseError(
            f"the PDF has no text layer ({count} pages of images, a scan?): it cannot be read without OCR",
            source=source,
        )
    return "<!doctype html><html><body>\n" + "\n".join(parts) + "\n</body></html>"


def page_count(pdf: Any) -> int:
    """The page count the document declares, read before any page is parsed."""
    try:
        pages = resolve1(pdf.doc.catalog["Pages"])
        return int(resolve1(pages["Count"]))
    except Exception:
        return len(pdf.pages)


def check_streams(body: bytes, source: str | None) -> None:
    """Refuse a PDF whose compressed streams unpack past the limits, before parsing it."""
    total = 0
    for match in _STREAM.finditer(body):
        decoder = zlib.decompressobj()
        try:
            data = decoder.decompress(body[match.end() : match.end() + MAX_STREAM_BYTES], MAX_STREAM_BYTES)
        except zlib.error:
            continue  # pdfminer reports a broken stream itself
        if decoder.unconsumed_tail:
            raise ParseError(
                f"a stream of the PDF unpacks to over {MAX_STREAM_BYTES} bytes: not read", source=source
            )
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise ParseError(
                f"the PDF's streams unpack to over {MAX_TOTAL_BYTES} bytes: not read", source=source
            )


def _page_parts(page: Any, parts: list[str], open_table: _Table | None) -> _Table | None:
    """Add one page's headings, paragraphs and tables to ``parts``; return the table still open
    (it may go on at the top of the next page)."""
    found = page.find_tables()
    boxes = [t.bbox for t in found]
    outside = page.filter(lambda obj: not any(_inside(obj, box) for box in boxes)) if boxes else page
    lines = _lines(outside.extract_words(extra_attrs=["size"]))
    body_size = statistics.median([c["size"] for c in page.chars] or [0.0])
    items: list[tuple[float, str, Any]] = [(t.bbox[1], "table", t.extract()) for t in found]
    if not found:
        plain = _plain_table(lines)
        if plain is not None:
            top, rows, used = plain
            lines = [line for line in lines if id(line) not in used]
            items.append((top, "table", rows))
    items += [(top, "line", words) for top, words in lines]
    items.sort(key=lambda item: item[0])
    for _, kind, value in items:
        if kind == "line":
            text = " ".join(w["text"] for w in value)
            big = body_size and max(w["size"] for w in value) >= body_size * _HEADING_RATIO
            if big and open_table is not None:
                parts.append(_table_html(open_table))
                open_table = None
            parts.append(f"<h2>{html.escape(text)}</h2>" if big else f"<p>{html.escape(text)}</p>")
            continue
        rows = [[collapse(c or "") for c in row] for row in value if any(c for c in row)]
        if not rows:
            continue
        if open_table is not None and _continues(open_table, rows[0]):
            _extend(open_table, rows)
            continue
        if open_table is not None:
            parts.append(_table_html(open_table))
        open_table = _start(rows)
    return open_table


def _inside(obj: dict[str, Any], box: Sequence[float]) -> bool:
    x0, top, x1, bottom = box
    return bool(
        obj["x0"] >= x0 - 1 and obj["x1"] <= x1 + 1 and obj["top"] >= top - 1 and obj["bottom"] <= bottom + 1
    )


def _start(rows: list[list[str]]) -> _Table:
    mapping = map_columns(rows[0])
    table = _Table(rows=[], width=len(rows[0]))
    if mapping is not None:
        table.header, table.entity = rows[0], mapping.entity
        table.rows.append(rows[0])
        rows = rows[1:]
    _extend(table, rows)
    return table


def _continues(table: _Table, first: list[str]) -> bool:
    """Whether a table found later goes on with ``table``: as wide, and no header of its own
    (or the same header, repeated)."""
    if len(first) != table.width:
        return False
    return first == table.header or map_columns(first) is None


def _extend(table: _Table, rows: list[list[str]]) -> None:
    for row in rows:
        if row == table.header:
            continue  # the header again, at the top of a page
        if not row[table.entity] and len(table.rows) > (1 if table.header else 0):
            previous = table.rows[-1]  # the rest of a wrapped row
            table.rows[-1] = [f"{a} {b}".strip() for a, b in zip(previous, row, strict=True)]
            continue
        table.rows.append(row)


def _table_html(table: _Table) -> str:
    out = ["<table>"]
    for i, row in enumerate(table.rows):
        tag = "th" if i == 0 and table.header else "td"
        out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


_Line = tuple[float, list[dict[str, Any]]]


def _lines(words: list[dict[str, Any]]) -> list[_Line]:
    """Words grouped into lines by their height on the page, each line left to right."""
    lines: list[_Line] = []
    for word in sorted(words, key=lambda w: (w["top"], w["x0"])):
        if lines and abs(lines[-1][0] - word["top"]) <= _LINE_TOLERANCE:
            lines[-1][1].append(word)
        else:
            lines.append((word["top"], [word]))
    for _, line in lines:
        line.sort(key=lambda w: w["x0"])
    return lines


def _segments(line: list[dict[str, Any]]) -> Iterator[tuple[float, str]]:
    """A line cut where words stand apart: (left edge, text) per cell."""
    start, words, right = line[0]["x0"], [line[0]["text"]], line[0]["x1"]
    for word in line[1:]:
        if word["x0"] - right > _COLUMN_GAP:
            yield start, " ".join(words)
            start, words = word["x0"], []
        words.append(word["text"])
        right = word["x1"]
    yield start, " ".join(words)


def _plain_table(lines: list[_Line]) -> tuple[float, list[list[str]], set[int]] | None:
    """A table without ruling: the first line whose cells read as column headers sets the columns;
    each later word goes to the column it starts in."""
    for i, (top, line) in enumerate(lines):
        cells = list(_segments(line))
        if len(cells) < 2:
            continue
        mapping = map_columns([text for _, text in cells])
        if mapping is None:
            continue
        edges = [x for x, _ in cells]
        rows = [[text for _, text in cells]]
        used = {id(lines[i])}
        gaps = [b[0] - a[0] for a, b in zip(lines[i:], lines[i + 1 :], strict=False)]
        usual = statistics.median(gaps) if gaps else 0.0
        previous = top
        for later in lines[i + 1 :]:
            if later[0] - previous > max(_BREAK_RATIO * usual, usual + _LINE_TOLERANCE * 4):
                break  # a gap much wider than the rows': a footer or the text after the list
            previous = later[0]
            row = [""] * len(edges)
            for word in later[1]:
                col = max((k for k, x in enumerate(edges) if word["x0"] >= x - 2), default=0)
                row[col] = f"{row[col]} {word['text']}".strip()
            rows.append(row)
            used.add(id(later))
        return top, rows, used
    return None
