"""Words that tell a list or a prose page is about subprocessors, and where they are located."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

from policy_watch.text import collapse

SUBPROCESSOR_WORDS = re.compile(
    r"sub[\s-]?processors?|\bprocessors\b|\bvendors\b|service\s+providers|third[\s-]part(?:y|ies)"
    r"|sub[\s-]?contractors|子处理",
    re.IGNORECASE,
)
_LOCATED = re.compile(
    r"\b(?:located|based|hosted|established)\s+(?:in|within)\s+(?:the\s+)?"
    r"(?P<place>[A-Z][\w.'’()-]*(?:\s+(?:[A-Z][\w.'’()-]*|of|and))*)",
)
_NOT_A_PLACE = frozenset({"The", "Our", "A", "An"})
_PAGE_CONTEXT_CSS = "title, h1, h2, h3"
_LEADING_PARAGRAPHS = 6


def mentions_subprocessors(text: str) -> bool:
    return SUBPROCESSOR_WORDS.search(text) is not None


def location_in(sentence: str) -> str:
    """``"These subprocessors are all located in the United States:"`` → ``"United States"``."""
    match = _LOCATED.search(sentence)
    if match is None:
        return ""
    place = match.group("place").rstrip(".")
    return "" if place in _NOT_A_PLACE else place


def page_is_about_subprocessors(tree: LexborHTMLParser) -> bool:
    """The title, a heading or one of the first paragraphs mentions subprocessors or vendors."""
    for node in tree.css(_PAGE_CONTEXT_CSS):
        if mentions_subprocessors(node.text()):
            return True
    paragraphs = tree.css("p")[:_LEADING_PARAGRAPHS]
    return any(mentions_subprocessors(collapse(node.text())) for node in paragraphs)
