"""The registry of page layouts, and the order the parser tries them in."""

from __future__ import annotations

from policy_watch.errors import ParseError
from policy_watch.models import ParseRules
from policy_watch.parse.base import Layout, LayoutResult
from policy_watch.parse.cards import read_cards
from policy_watch.parse.document import Page
from policy_watch.parse.lists import read_lists
from policy_watch.parse.prose import read_bold_names, read_vendor_headings
from policy_watch.parse.rules import read_rules
from policy_watch.parse.tables import read_tables

# Built-in layouts, surest first: the first one that reads any entry wins.
LAYOUTS: dict[str, Layout] = {
    "tables": read_tables,
    "lists": read_lists,
    "cards": read_cards,
    "headings": read_vendor_headings,
    "bold-prose": read_bold_names,
}
RULES_LAYOUT: Layout = read_rules

_LINK_CSS = "a[href]"
_MAX_LINKS_NAMED = 2


def _links_elsewhere(page: Page) -> str:
    """Links that look like they lead to the real list (a page that moved its list away)."""
    hrefs: list[str] = []
    for link in page.tree.css(_LINK_CSS):
        href = link.attrs.get("href") or ""
        if "processor" in href.lower() and href not in hrefs and not href.startswith("#"):
            hrefs.append(href)
    return f"; links to {', '.join(hrefs[:_MAX_LINKS_NAMED])}" if hrefs else ""


def read_entries(page: Page, rules: ParseRules, source: str | None) -> LayoutResult:
    """Entries by the vendor's rules if it has any, else by the first built-in layout that reads some."""
    layouts = [RULES_LAYOUT] if rules.row else list(LAYOUTS.values())
    seen: list[str] = []
    for layout in layouts:
        result = layout(page, rules)
        if result.entries:
            return result
        seen.extend(result.seen)
    found = "; ".join(seen) if seen else "no tables, lists or labelled entries"
    title = f"; page title {page.title!r}" if page.title else ""
    message = f"no subprocessor table or list found: {found}{_links_elsewhere(page)}{title}"
    raise ParseError(message, source=source)
