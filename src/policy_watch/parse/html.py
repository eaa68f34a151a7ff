"""Decoding page bytes, building the tree, and normalising the text of nodes."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator

from selectolax.lexbor import LexborHTMLParser, LexborNode

from policy_watch.parse.budget import NO_DEADLINE, Deadline
from policy_watch.text import collapse

HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
HEADING_CSS = "h1, h2, h3, h4, h5, h6"
# Headings and paragraphs that are one bold phrase (see ``is_heading``).
_HEADING_LIKE_CSS = f"{HEADING_CSS}, p > strong:only-child, p > b:only-child"
# Page furniture around the content: navigation, site header and footer, side bars, menus, forms.
CHROME_TAGS = frozenset({"nav", "header", "footer", "aside", "menu", "form"})
# Elements a browser lays out as their own block: their text never runs into a neighbour's.
BLOCK_TAGS = HEADING_TAGS | frozenset(
    [
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "blockquote",
        "pre",
        "section",
        "article",
        "table",
        "tr",
        "td",
        "th",
        "caption",
        "address",
        "figure",
        "figcaption",
        "header",
        "footer",
        "nav",
        "aside",
        "hr",
    ]
)
MARK = "\x00"  # joins the text nodes of one element; never occurs in HTML text
GLUED = re.compile(r"[^\s\x00]\x00+[^\s\x00]")  # markup between two letters

_CHARSET_PARAM = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Labels that browsers read as windows-1252 (WHATWG Encoding Standard).
_WINDOWS_1252_ALIASES = frozenset(
    {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "ascii", "us-ascii", "cp819"}
)
_WESTERN_LOOKALIKES = frozenset(
    {"latin-1", "iso8859-15", "cp1250", "cp1254", "iso8859-2", "cp1125", "mac-roman"}
)
_WESTERN_LETTERS = frozenset("àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÁÂÄÅÆÇÈÉÊËÍÎÑÓÔÖØÚÜ’“”–—€")
_CENTRAL_LETTERS = frozenset("ąćęłńśźżčďěňřšťůžĄĆĘŁŃŚŹŻČĎĚŇŘŠŤŮŽőűŐŰ")
_HEADING_JUNK = "¶#§🔗 \t"


def _known_codec(label: str) -> str | None:
    name = label.strip().lower()
    if name in _WINDOWS_1252_ALIASES:
        return "cp1252"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _CHARSET_PARAM.search(content_type)
    return _known_codec(match.group(1)) if match else None


def _declared_in_document(body: bytes) -> str | None:
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return codec
    match = _META_CHARSET.search(body[:4096])
    if match:
        return _known_codec(match.group(1).decode("ascii", "replace"))
    return None


def _detect(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(body).best()
    codec = _known_codec(best.encoding) if best is not None else None
    if codec is None or codec in _WESTERN_LOOKALIKES:
        # Detectors often call a Western windows-1252 page cp1250 or latin-2: compare the letters.
        western = body.decode("cp1252", errors="replace")
        if codec in {"cp1250", "iso8859-2"}:
            central = body.decode(codec, errors="replace")
            if _count(central, _CENTRAL_LETTERS) > _count(western, _WESTERN_LETTERS):
                return central
        return western
    return body.decode(codec, errors="replace")


def _count(text: str, letters: frozenset[str]) -> int:
    return sum(1 for char in text if char in letters)


def decode_body(body: bytes, content_type: str | None) -> str:
    """Decode page bytes: the HTTP charset, then a BOM or ``<meta charset>``, then detection."""
    codec = charset_from_content_type(content_type) or _declared_in_document(body)
    if codec is not None:
        if codec == "utf-16" and not body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            codec = "utf-8"  # a <meta charset=utf-16> in an ASCII-compatible file is a lie
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            # The declaration is wrong (windows-1252 bytes labelled UTF-8 are common): replacing the
            # bad bytes would turn every accented name into a new entity, so detect instead.
            return _detect(body)
    return _detect(body)


def build_tree(body: bytes | str, content_type: str | None) -> LexborHTMLParser:
    """The parsed page. UTF-8 bytes go to the parser as they are, saving a decode and re-encode."""
    if isinstance(body, bytes):
        codec = charset_from_content_type(content_type) or _declared_in_document(body)
        if codec not in ("utf-8", "utf-8-sig") or not _is_utf8(body):
            return LexborHTMLParser(decode_body(body, content_type))
    return LexborHTMLParser(body)


def _is_utf8(body: bytes) -> bool:
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def node_text(node: LexborNode) -> str:
    """The visible text of a node, whitespace-collapsed, as a browser lays it out.

    ``<br>`` and block elements separate words; inline markup (links, bold, code) does not.
    Plain-text nodes take one call; only nodes with markup glued to words are walked.
    """
    raw = node.text(separator=MARK)
    if MARK not in raw:
        return collapse(raw)
    return marked_text(node, raw)


def marked_text(node: LexborNode, raw: str) -> str:
    """``node_text`` of a node whose text came in several pieces (``raw`` joined by marks)."""
    if GLUED.search(raw) is None:
        return collapse(raw.replace(MARK, ""))
    return glued_text(node, raw)


def glued_text(node: LexborNode, raw: str) -> str:
    """``marked_text`` once markup is known to sit between two letters somewhere in ``raw``."""
    if all(child.tag == "br" for child in node.iter()):  # "Hosting<br>Storage": every mark is a break
        return collapse(raw.replace(MARK, " "))
    parts: list[str] = []
    _walk(node, parts)
    return collapse("".join(parts))


def _walk(node: LexborNode, parts: list[str]) -> None:
    """The text under ``node`` in document order, a space around each block and for each break.

    Iterative: markup nested thousands deep (tables in tables) must not exhaust the call stack."""
    todo: list[LexborNode | str] = [node]  # a node to open, or text to emit; the next one last
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        for child in reversed(list(item.iter(include_text=True))):
            if child.is_text_node:
                todo.append(child.text())
                continue
            tag = child.tag
            if tag == "br":
                todo.append(" ")
            elif tag in BLOCK_TAGS:
                todo += [" ", child, " "]
            elif tag and not tag.startswith("-"):
                todo.append(child)


def heading_text(node: LexborNode) -> str:
    return node_text(node).strip(_HEADING_JUNK)


def is_heading(node: LexborNode) -> bool:
    """A real heading, or a paragraph that is nothing but one short bold phrase."""
    if node.tag in HEADING_TAGS:
        return True
    parent = node.parent
    if parent is None:
        return False
    text = node_text(node)
    return bool(text) and len(text) <= 80 and node_text(parent) == text and not any(c.isdigit() for c in text)


def with_sections(
    tree: LexborHTMLParser,
    target_css: str,
    target_tags: frozenset[str] | None = None,
    deadline: Deadline = NO_DEADLINE,
) -> Iterator[tuple[LexborNode, str]]:
    """Each node matching ``target_css``, in document order, with the nearest heading before it.

    ``target_tags``, when the selector is a plain list of tag names, saves a second query.
    """
    section = ""
    targets: set[int] = set()
    if target_tags is None:
        targets = {node.mem_id for node in tree.css(target_css)}
    for node in tree.css(f"{_HEADING_LIKE_CSS}, {target_css}"):
        deadline.check()
        if node.tag in target_tags if target_tags is not None else node.mem_id in targets:
            yield node, section
        elif is_heading(node):
            section = heading_text(node)


def _last_heading_in(node: LexborNode) -> str | None:
    if node.tag in HEADING_TAGS or node.tag == "summary":
        return heading_text(node)
    if node.tag == "details":  # collapsed, only its summary shows
        summary = node.css_first("summary")
        return heading_text(summary) if summary is not None else None
    if node.tag == "p":
        bold = node.child  # a pseudo-heading is a <p> holding one <strong> and nothing else
        if bold is None or bold.tag not in ("strong", "b") or bold.next is not None:
            return None
        return heading_text(bold) if is_heading(bold) else None
    for inner in reversed(node.css(_HEADING_LIKE_CSS)):  # css() includes the node itself
        if is_heading(inner):
            return heading_text(inner)
    return None


def heading_before(node: LexborNode) -> str:
    """The nearest heading before ``node`` in document order, walking back from it."""
    current: LexborNode | None = node
    while current is not None:
        sibling = current.prev
        while sibling is not None:
            if (
                sibling.tag
                and sibling.tag[0] not in "-#!"
                and (found := _last_heading_in(sibling)) is not None
            ):
                return found
            sibling = sibling.prev
        current = current.parent
    return ""


def element_children(node: LexborNode) -> Iterator[LexborNode]:
    for child in node.iter():
        if child.tag and not child.tag.startswith(("-", "#", "!")):
            yield child


def next_element(node: LexborNode) -> LexborNode | None:
    sibling = node.next
    while sibling is not None and (sibling.is_text_node or sibling.is_comment_node):
        if sibling.is_text_node and sibling.text().strip():
            return None
        sibling = sibling.next
    return sibling


def previous_element(node: LexborNode) -> LexborNode | None:
    sibling = node.prev
    while sibling is not None and (sibling.is_text_node or sibling.is_comment_node):
        sibling = sibling.prev
    return sibling


def inside(node: LexborNode, tags: frozenset[str]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False
