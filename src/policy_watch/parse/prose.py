"""Prose pages: a heading per vendor with its purpose paragraph, or vendor names in bold."""

from __future__ import annotations

from collections import defaultdict

from selectolax.lexbor import LexborHTMLParser, LexborNode

from policy_watch.models import Entry, ParseRules
from policy_watch.parse.base import LayoutResult, dedupe, make_entry
from policy_watch.parse.budget import Deadline
from policy_watch.parse.context import page_is_about_subprocessors
from policy_watch.parse.document import Page
from policy_watch.parse.html import (
    CHROME_TAGS,
    HEADING_CSS,
    HEADING_TAGS,
    heading_text,
    inside,
    next_element,
    node_text,
    with_sections,
)
from policy_watch.parse.names import GOOD_SHARE, is_prose_name
from policy_watch.text import collapse

_PARAGRAPH_TAGS = frozenset({"p", "div"})
_BOLD_CSS = "p > strong, p > b, li > strong, li > b"


def _level(node: LexborNode) -> int:
    return int(node.tag[1]) if node.tag in HEADING_TAGS and node.tag else 7


def _describes(heading: LexborNode, name: str) -> LexborNode | None:
    """The paragraph right after a vendor heading, when it talks about that vendor."""
    paragraph = next_element(heading)
    if paragraph is None or paragraph.tag not in _PARAGRAPH_TAGS or not is_prose_name(name):
        return None
    return paragraph if name in collapse(paragraph.text()) else None


def _heading_groups(tree: LexborHTMLParser, deadline: Deadline) -> list[list[tuple[LexborNode, str]]]:
    """Sibling headings of one level, each with the nearest higher-level heading above it."""
    groups: dict[tuple[int, str], list[tuple[LexborNode, str]]] = defaultdict(list)
    above: dict[int, str] = {}
    for heading in tree.css(HEADING_CSS):
        deadline.check()
        level = _level(heading)
        parent = heading.parent
        if parent is None or inside(heading, CHROME_TAGS):
            continue
        section = next((above[lv] for lv in range(level - 1, 0, -1) if lv in above), "")
        groups[(parent.mem_id, heading.tag or "")].append((heading, section))
        above[level] = heading_text(heading)
        for deeper in range(level + 1, 7):
            above.pop(deeper, None)
    return [group for group in groups.values() if len(group) >= 2]


def read_vendor_headings(page: Page, rules: ParseRules) -> LayoutResult:
    """Layout "headings": ``<h3>Vendor</h3><p>Vendor does X for us.</p>`` repeated."""
    if not page_is_about_subprocessors(page.tree):
        return LayoutResult()
    entries: list[Entry] = []
    for group in _heading_groups(page.tree, page.deadline):
        page.deadline.check()
        found = [(h, s, heading_text(h)) for h, s in group]
        described = [(s, name, p) for h, s, name in found if (p := _describes(h, name)) is not None]
        if len(described) >= 2 and len(described) >= GOOD_SHARE * len(found):
            entries.extend(make_entry(s, name, node_text(p)) for s, name, p in described)
    return LayoutResult(dedupe(entries))


def read_bold_names(page: Page, rules: ParseRules) -> LayoutResult:
    """Layout "bold-prose": vendor names in bold inside paragraphs, grouped by heading."""
    if not page_is_about_subprocessors(page.tree):
        return LayoutResult()
    entries: list[Entry] = []
    seen: set[tuple[str, str]] = set()
    for bold, section in with_sections(page.tree, _BOLD_CSS, deadline=page.deadline):
        page.deadline.check()
        name = collapse(bold.text()).strip(" ,.;")
        parent = bold.parent
        if parent is None or not is_prose_name(name) or collapse(parent.text()) == name:
            continue
        if (section, name.lower()) in seen or inside(bold, CHROME_TAGS):
            continue
        seen.add((section, name.lower()))
        entries.append(make_entry(section, name))
    if len(entries) < 2:
        return LayoutResult()
    return LayoutResult(tuple(entries))
