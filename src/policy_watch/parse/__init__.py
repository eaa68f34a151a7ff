"""The parse stage: a vendor's page (bytes or text) in, its subprocessor entries out.

Pure: no I/O. Tables are read wherever they have an entity column; pages without tables are
read by the list, card, heading and prose layouts in ``LAYOUTS``, or by per-vendor CSS rules.
"""

from __future__ import annotations

from policy_watch.errors import ParseError
from policy_watch.models import ParsedPage, ParseRules
from policy_watch.parse.budget import MAX_PAGE_BYTES, PARSE_SECONDS, Deadline, check_markup, check_size
from policy_watch.parse.dates import declared_date
from policy_watch.parse.document import load_page
from policy_watch.parse.html import decode_body
from policy_watch.parse.layouts import LAYOUTS, read_entries

__all__ = ["LAYOUTS", "PARSER_VERSION", "ParseError", "decode_body", "parse_page"]

PARSER_VERSION = "1"

_NO_RULES = ParseRules()


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
    check_markup(body, source)
    page = load_page(body, content_type, Deadline.after(seconds, source))
    result = read_entries(page, rules, source)
    return ParsedPage(
        entries=result.entries,
        last_modified=declared_date(page.text(), rules.date_format),
        title=page.title,
        columns=result.columns,
        headers=result.headers,
    )
