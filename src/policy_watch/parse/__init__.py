"""The parse stage: a vendor's page (bytes or text) in, its subprocessor entries out.

Pure: no I/O. Tables are read wherever they have an entity column; pages without tables are
read by the list, heading and prose layouts in ``LAYOUTS``, or by per-vendor CSS rules.
"""

from __future__ import annotations

from policy_watch.errors import ParseError
from policy_watch.models import ParsedPage, ParseRules
from policy_watch.parse.dates import declared_date
from policy_watch.parse.html import build_tree, collapse, decode_body
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
) -> ParsedPage:
    """Read the entries and declared date of one page; ParseError when no entry can be read."""
    rules = rules or _NO_RULES
    tree = build_tree(body, content_type)
    title_node = tree.css_first("title")
    text_root = tree.body or tree.root
    page_text = text_root.text(separator=" ") if text_root is not None else ""
    result = read_entries(tree, rules, source)
    return ParsedPage(
        entries=result.entries,
        last_modified=declared_date(page_text, rules.date_format),
        title=collapse(title_node.text()) if title_node is not None else "",
        columns=result.columns,
    )
