"""The parse stage: a vendor's page (bytes or text) in, its subprocessor entries out.

Pure: no I/O. Tables are read wherever they have an entity column; pages without tables are
read by the list, card, heading and prose layouts in ``LAYOUTS``, or by per-vendor CSS rules.
A page whose markup holds no list is read from the data its scripts carry (``embedded``); a
PDF is read by ``pdf``. Each result says which reader read it.
"""

from __future__ import annotations

from policy_watch.errors import BudgetError, ParseError
from policy_watch.models import ParsedPage, ParseRules
from policy_watch.parse.budget import MAX_PAGE_BYTES, PARSE_SECONDS, Deadline, check_markup, check_size
from policy_watch.parse.dates import declared_date
from policy_watch.parse.document import load_page
from policy_watch.parse.html import decode_body
from policy_watch.parse.layouts import LAYOUTS, read_entries

__all__ = ["LAYOUTS", "PARSER_VERSION", "READERS", "ParseError", "decode_body", "is_pdf", "parse_page"]

PARSER_VERSION = "1"
READERS = ("html", "embedded data", "pdf")

_NO_RULES = ParseRules()


def is_pdf(body: bytes | str, content_type: str | None) -> bool:
    """A PDF by its Content-Type, or by its first bytes (a local file has no Content-Type)."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime == "application/pdf":
        return True
    return isinstance(body, bytes) and body[:1024].lstrip().startswith(b"%PDF-")


def parse_page(
    body: bytes | str,
    *,
    content_type: str | None = None,
    rules: ParseRules | None = None,
    source: str | None = None,
    seconds: float = PARSE_SECONDS,
    max_bytes: int = MAX_PAGE_BYTES,
) -> ParsedPage:
    """Read the entries and declared date of one page; ParseError when no entry can be read, or
    when the page is larger than ``max_bytes``, too costly to build a tree of, or takes longer
    than ``seconds`` to read."""
    rules = rules or _NO_RULES
    check_size(body, source, max_bytes)
    deadline = Deadline.after(seconds, source)
    if is_pdf(body, content_type):
        from policy_watch.parse.pdf import pdf_to_html  # pdfplumber: loaded only for PDFs

        assert isinstance(body, bytes)
        parsed = _parse_html(pdf_to_html(body, source), "text/html; charset=utf-8", rules, source, deadline)
        return _as(parsed, "pdf")
    check_markup(body, source)
    try:
        return _parse_html(body, content_type, rules, source, deadline)
    except BudgetError:
        raise  # too costly: no other reader gets to try
    except ParseError as error:
        if rules.row:  # the vendor's own selectors found nothing: that is the answer
            raise
        embedded = _parse_embedded(body, content_type, rules)
        if embedded is None:
            raise error from None
        return embedded


def _parse_html(
    body: bytes | str, content_type: str | None, rules: ParseRules, source: str | None, deadline: Deadline
) -> ParsedPage:
    page = load_page(body, content_type, deadline)
    result = read_entries(page, rules, source)
    return ParsedPage(
        entries=result.entries,
        last_modified=declared_date(page.text(), rules.date_format),
        title=page.title,
        columns=result.columns,
        headers=result.headers,
    )


def _parse_embedded(body: bytes | str, content_type: str | None, rules: ParseRules) -> ParsedPage | None:
    from policy_watch.parse.embedded import read_embedded

    text = body if isinstance(body, str) else decode_body(body, content_type)
    found = read_embedded(text)
    if not found.entries:
        return None
    page = load_page(text, None)
    return ParsedPage(
        entries=found.entries,
        last_modified=found.declared or declared_date(page.text(), rules.date_format),
        title=page.title,
        columns=found.columns,
        reader="embedded data",
    )


def _as(page: ParsedPage, reader: str) -> ParsedPage:
    from dataclasses import replace

    return replace(page, reader=reader)
