"""One parsed page: the tree without scripts and styles, its tables and its visible text."""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

from policy_watch.parse.html import (
    HEADINGS_CSS,
    INVISIBLE_TAGS,
    build_tree,
    collapse,
    heading_text,
    inside,
    is_heading,
)

_INDEX_CSS = f"script, style, noscript, template, {HEADINGS_CSS}, table"


@dataclass(frozen=True, slots=True)
class Page:
    tree: LexborHTMLParser
    tables: tuple[tuple[LexborNode, str], ...]  # each table with the nearest heading before it
    title: str

    def text(self) -> str:
        """The visible text of the page body, words separated."""
        root = self.tree.body or self.tree.root
        return root.text(separator=" ") if root is not None else ""


def load_page(body: bytes | str, content_type: str | None) -> Page:
    """Parse the page and index it in one pass: drop invisible elements, find tables and headings."""
    tree = build_tree(body, content_type)
    invisible: list[LexborNode] = []
    tables: list[tuple[LexborNode, str]] = []
    section = ""
    for node in tree.css(_INDEX_CSS):
        tag = node.tag
        if tag == "table":
            tables.append((node, section))
        elif tag in INVISIBLE_TAGS:
            invisible.append(node)
        elif is_heading(node):
            section = heading_text(node)
    title = tree.css_first("title")
    title_text = collapse(title.text()) if title is not None else ""
    if invisible:
        tables = [(table, heading) for table, heading in tables if not inside(table, INVISIBLE_TAGS)]
        for node in reversed(invisible):  # innermost first, so no node is removed twice
            node.decompose()
    return Page(tree, tuple(tables), title_text)
