"""One parsed page: the tree without scripts and styles, its tables and its visible text."""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser, LexborNode

from policy_watch.parse.html import build_tree, collapse, heading_before

_INVISIBLE = ("noscript", "template", "script", "style")  # containers first: nothing is removed twice
# Elements that usually wrap a large part of a page: ``leading_text`` reads their children one
# by one instead of taking all their text at once.
_WRAPPERS = frozenset(
    {"html", "body", "main", "div", "section", "article", "header", "footer", "nav", "aside", "form", "center"}
)


@dataclass(frozen=True, slots=True)
class Page:
    tree: LexborHTMLParser
    tables: tuple[tuple[LexborNode, str], ...]  # each table with the nearest heading before it
    title: str

    def text(self) -> str:
        """The visible text of the page body, words separated."""
        root = self.tree.body or self.tree.root
        return root.text(separator=" ") if root is not None else ""

    def leading_text(self, limit: int) -> tuple[str, bool]:
        """The start of ``text()``, at least ``limit`` characters of it, and whether that is all of it.

        Reads the body's wrappers child by child and stops once it has enough, so the text of
        a long page is not built just to look at its top.
        """
        root = self.tree.body or self.tree.root
        if root is None:
            return "", True
        parts: list[str] = []
        complete = _read_leading(root, limit, parts, 0) < limit
        return " ".join(parts), complete


def _read_leading(node: LexborNode, limit: int, parts: list[str], size: int) -> int:
    """Append the text of ``node``'s children to ``parts`` until ``size`` reaches ``limit``.

    The pieces, joined by spaces, are the start of ``node.text(separator=" ")``: that joins every
    text node with a space, and a child element without text adds nothing.
    """
    for child in node.iter(include_text=True):
        if child.is_text_node:
            piece = child.text()
        elif child.tag in _WRAPPERS:
            size = _read_leading(child, limit, parts, size)
            if size >= limit:
                return size
            continue
        elif child.is_element_node:
            piece = child.text(separator=" ")
        else:
            continue  # comments
        if piece:
            parts.append(piece)
            size += len(piece) + 1
            if size >= limit:
                return size
    return size


def load_page(body: bytes | str, content_type: str | None) -> Page:
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
    tables = tuple((table, heading_before(table)) for table in tree.tags("table"))
    return Page(tree, tables, title)
