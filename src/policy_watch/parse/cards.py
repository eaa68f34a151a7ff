"""Cards: a vendor name followed by labelled lines such as ``Purpose: ...`` and ``Location: ...``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from policy_watch.models import Entry, ParseRules
from policy_watch.parse.base import LayoutResult, dedupe, make_entry
from policy_watch.parse.budget import Deadline
from policy_watch.parse.document import Page
from policy_watch.parse.headers import COUNTRY, ENTITY, PURPOSE, map_label
from policy_watch.parse.html import (
    CHROME_TAGS,
    HEADING_CSS,
    element_children,
    heading_text,
    inside,
    is_heading,
    next_element,
    previous_element,
)
from policy_watch.text import collapse

_GATE = re.compile(r"(?:purpose|location|country|region|description)s?\s*:", re.IGNORECASE)
_LABEL = re.compile(r"^([^\W\d][\w ()/-]{1,40}?)\s*:\s*(.*)$")
_LINE_CSS = "p, li, div, dd, dt, span, td"
_MAX_LINE_CHARS = 400
_MAX_NAME_CHARS = 80


@dataclass(slots=True)
class _Card:
    node: LexborNode
    fields: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    line_ids: set[int] = field(default_factory=set)


def _label_lines(tree: LexborHTMLParser, deadline: Deadline) -> list[tuple[LexborNode, str, str]]:
    """Innermost elements reading ``Label: value`` (or a ``<dt>Label</dt><dd>value</dd>`` pair)."""
    lines: list[tuple[LexborNode, str, str]] = []
    for node in tree.css(_LINE_CSS):
        deadline.check()
        text = collapse(node.text())
        if len(text) > _MAX_LINE_CHARS:
            continue
        match = _LABEL.match(text)
        label, value = (match.group(1), match.group(2)) if match else (text, "")
        if not match and node.tag != "dt":
            continue
        if not value:
            following = next_element(node)
            value = collapse(following.text()) if following is not None else ""
        lines.append((node, label.strip(), value))
    ancestors: set[int] = set()
    for node, _, _ in lines:
        parent = node.parent
        while parent is not None and parent.mem_id not in ancestors:  # the rest are in already
            ancestors.add(parent.mem_id)
            parent = parent.parent
    return [line for line in lines if line[0].mem_id not in ancestors]


def _card_of(line: LexborNode) -> LexborNode | None:
    card = line.parent
    if card is not None and card.tag in {"dl", "span", "strong", "b"}:
        card = card.parent
    return card


def _group(tree: LexborHTMLParser, deadline: Deadline) -> list[_Card]:
    cards: dict[int, _Card] = {}
    for node, label, value in _label_lines(tree, deadline):
        deadline.check()
        card_node = _card_of(node)
        if card_node is None or inside(node, CHROME_TAGS):
            continue
        card = cards.setdefault(card_node.mem_id, _Card(card_node))
        card.line_ids.add(node.mem_id)
        target = map_label(label)
        if target in (PURPOSE, COUNTRY) and target not in card.fields:
            card.fields[target] = value
        elif target != ENTITY:
            card.extra.setdefault(label, value)
        else:
            card.fields.setdefault(ENTITY, value)
    return [card for card in cards.values() if card.fields.keys() & {PURPOSE, COUNTRY}]


def _name(card: _Card) -> str:
    """The first text of the card that is not a labelled line, else a heading right before it."""
    if ENTITY in card.fields:
        return card.fields[ENTITY]
    for child in element_children(card.node):
        if child.mem_id in card.line_ids or child.tag in {"dl", "ul", "ol"}:
            continue
        if child.css_first("dt, dd") is not None:
            continue
        text = collapse(child.text())
        if text:
            return text if len(text) <= _MAX_NAME_CHARS and not _LABEL.match(text) else ""
    previous = previous_element(card.node)
    return heading_text(previous) if previous is not None and is_heading(previous) else ""


def _section(card: LexborNode, names: set[str]) -> str:
    """The nearest heading before the card that is not itself a vendor name."""
    node: LexborNode | None = card
    while node is not None:
        sibling = previous_element(node)
        while sibling is not None:
            for heading in reversed(sibling.css(HEADING_CSS)):  # includes sibling itself
                if heading_text(heading) not in names:
                    return heading_text(heading)
            sibling = previous_element(sibling)
        node = node.parent
    return ""


def read_cards(page: Page, rules: ParseRules) -> LayoutResult:
    """Layout "cards": blocks holding a vendor name and ``Purpose:`` / ``Location:`` lines."""
    if _GATE.search(page.text()) is None:
        return LayoutResult()
    cards = [(card, name) for card in _group(page.tree, page.deadline) if (name := _name(card))]
    names = {name for _, name in cards}
    entries: list[Entry] = []
    for card, name in cards:
        page.deadline.check()
        section = _section(card.node, names)
        entries.append(
            make_entry(section, name, card.fields.get(PURPOSE, ""), card.fields.get(COUNTRY, ""), card.extra)
        )
    return LayoutResult(dedupe(entries))
