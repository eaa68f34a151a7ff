"""One parsed page: the tree without scripts and styles, its tables and its visible text."""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

from policy_watch.parse.budget import NO_DEADLINE, Deadline
from policy_watch.parse.html import build_tree, heading_before
from policy_watch.text import collapse

# Containers first: nothing is removed twice. <template> needs no removal: its content is a
# separate fragment that text(), css() and tags() never reach.
_INVISIBLE = ("noscript", "script", "style")


@dataclass(frozen=True, slots=True)
class Page:
    tree: LexborHTMLParser
    tables: tuple[tuple[LexborNode, str], ...]  # each table with the nearest heading before it
    title: str
    deadline: Deadline = NO_DEADLINE  # readers check it in their loops over tables, rows and items

    def text(self) -> str:
        """The visible text of the page body, words separated."""
        root = self.tree.body or self.tree.root
        return root.text(separator=" ") if root is not None else ""


def load_page(body: bytes | str, content_type: str | None, deadline: Deadline = NO_DEADLINE) -> Page:
    """Parse the page, drop invisible elements, and find its tables with their headings."""
    tree = build_tree(body, content_type)
    head = tree.head
    title_node = head.css_first("title") if head is not None else None
    if title_node is None:
        titles = tree.tags("title")
        title_node = titles[0] if titles else None
    title = collapse(title_node.text()) if title_node is not None else ""
    for tag in _INVISIBLE:
        for node in tree.tags(tag):
            node.decompose()
    tables: list[tuple[LexborNode, str]] = []
    for table in tree.tags("table"):
        deadline.check()
        tables.append((table, heading_before(table)))
    return Page(tree, tuple(tables), title, deadline)
