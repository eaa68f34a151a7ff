"""Bulleted lists: ``Name. Purpose.`` or ``Name – purpose – country`` under a subprocessor sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass

from selectolax.lexbor import LexborNode

from policy_watch.models import Entry, ParseRules
from policy_watch.parse.base import LayoutResult, dedupe, make_entry
from policy_watch.parse.context import location_in, mentions_subprocessors
from policy_watch.parse.document import Page
from policy_watch.parse.html import (
    CHROME_TAGS,
    HEADING_TAGS,
    element_children,
    inside,
    node_text,
    previous_element,
    with_sections,
)
from policy_watch.parse.names import GOOD_SHARE, is_item_name
from policy_watch.text import collapse

# A list inside page furniture, a form control or another list item is no list of subprocessors.
_NOT_CONTENT = CHROME_TAGS | {"button", "select", "li"}
_LIST_TAGS = frozenset({"ul", "ol"})
_INTRO_TAGS = HEADING_TAGS | {"p", "div", "span", "strong", "b", "em"}
_LEAD_TAGS = frozenset({"a", "strong", "b", "em", "i", "span", "code"})
_SEPARATOR = re.compile(r"\s+[–—|]\s+|\s+-\s+")
_SENTENCE_BREAK = re.compile(r"^(.+?)(?::\s+|\.\s+(?=\S))(.+)$")
_AFTER_LEAD = re.compile(r"\s*[.:–—|]|\s+-\s")
_LEADING_PUNCT = re.compile(r"^[\s.:,;–—|-]+")


@dataclass(frozen=True, slots=True)
class ListItem:
    entity: str
    purpose: str = ""
    country: str = ""


def _lead_text(item: LexborNode) -> str:
    """Text of a link or bold name the item starts with, if it starts with one."""
    for child in item.iter(include_text=True):
        if child.is_text_node:
            if child.text().strip():
                return ""
            continue
        return collapse(child.text()) if child.tag in _LEAD_TAGS else ""
    return ""


def _tidy(text: str) -> str:
    return _LEADING_PUNCT.sub("", text).strip().rstrip(".").strip()


def split_item(text: str, lead: str) -> ListItem:
    """Split one item's text into entity, purpose and country."""
    if lead and text.startswith(lead) and _AFTER_LEAD.match(text, len(lead)):
        rest = [_tidy(p) for p in _SEPARATOR.split(_LEADING_PUNCT.sub("", text[len(lead) :]))]
        return ListItem(lead, rest[0], rest[1] if len(rest) > 1 else "")
    parts = [_tidy(p) for p in _SEPARATOR.split(text)]
    if len(parts) >= 2:
        return ListItem(parts[0], parts[1], parts[2] if len(parts) > 2 else "")
    match = _SENTENCE_BREAK.match(text)
    if match:
        return ListItem(match.group(1).strip(), _tidy(match.group(2)))
    return ListItem(_tidy(text) or text)


def _items(list_node: LexborNode) -> list[ListItem]:
    items: list[ListItem] = []
    for li in element_children(list_node):
        if li.tag != "li":
            continue
        lead = _lead_text(li)
        text = node_text(li)
        if text:
            items.append(split_item(text, lead))
    return items


def _intro(list_node: LexborNode) -> str:
    previous = previous_element(list_node)
    if previous is None or previous.tag not in _INTRO_TAGS:
        return ""
    return collapse(previous.text())


def read_list(list_node: LexborNode, section: str) -> tuple[list[Entry], str]:
    """Entries of one list, or none and why, when it does not clearly look like a subprocessor list."""
    intro = _intro(list_node)
    about = mentions_subprocessors(intro)
    items = _items(list_node)
    if not items or not (about or (len(items) >= 2 and mentions_subprocessors(section))):
        return [], ""
    good = [item for item in items if is_item_name(item.entity)]
    if len(good) < GOOD_SHARE * len(items):
        return [], items[0].entity
    place = location_in(intro)
    return [make_entry(section, i.entity, i.purpose, i.country or place) for i in good], ""


def read_lists(page: Page, rules: ParseRules) -> LayoutResult:
    """Layout "lists": every bulleted list introduced as a list of subprocessors."""
    entries: list[Entry] = []
    count = 0
    not_names: list[str] = []
    for list_node, section in with_sections(page.tree, "ul, ol", _LIST_TAGS, page.deadline):
        page.deadline.check()
        if inside(list_node, _NOT_CONTENT):
            continue
        count += 1
        found, first_item = read_list(list_node, section)
        entries.extend(found)
        if first_item:
            not_names.append(first_item)
    if entries:
        return LayoutResult(dedupe(entries))
    plural = "s" if count != 1 else ""
    if not_names:
        return LayoutResult(
            seen=(
                f"{count} list{plural}; items under a subprocessor sentence do not read as names "
                f"(e.g. {not_names[0]!r})",
            )
        )
    if count:
        return LayoutResult(seen=(f"{count} list{plural}, none introduced as a subprocessor list",))
    return LayoutResult()
