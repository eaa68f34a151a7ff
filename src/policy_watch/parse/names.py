"""What reads as one vendor's name, in each layout. Pure text rules: no tree.

The bar differs by where the text stands. A table's first column without a header is taken by
its shape (a capital or a digit first, no amounts, no addresses); a list item's lead is taken
unless it reads as a link label or a document's title; a bold phrase or a heading in prose is
held tightest (shorter, and no "Note:" or "Example"), since most bold text on a page names no
vendor. What counts as a legal form is ``policy_watch.text.LEGAL_SUFFIXES``.
"""

from __future__ import annotations

import re

from policy_watch.text import LEGAL_SUFFIXES, words

# A group of candidates (list items, headings) reads as names when this share of them does.
GOOD_SHARE = 0.6

_NOT_A_CELL_NAME = re.compile(r"^[\d\s.,:;/%$€£¥+-]+$|[:$€£¥]|^https?://")
_NOT_AN_ITEM_NAME = re.compile(
    r"\b(?:agreement|policy|policies|terms|privacy|cookies?|compliance|click|here|learn more|read more"
    r"|contact us|subscribe|sign up|log ?in)\b",
    re.IGNORECASE,
)
_NOT_A_PROSE_NAME = re.compile(
    r"^(?:note|notes|important|warning|caution|disclaimer|update|updated|new|example|tip)\b|[:\d]$|^\W",
    re.IGNORECASE,
)


def _short(text: str, max_chars: int, max_words: int) -> bool:
    return 0 < len(text) <= max_chars and len(text.split()) <= max_words


def is_cell_name(text: str) -> bool:
    """A cell of a headerless table's first column that reads as a company name."""
    return (
        _short(text, 60, 8)
        and (text[0].isupper() or text[0].isdigit())
        and _NOT_A_CELL_NAME.search(text) is None
    )


def is_item_name(text: str) -> bool:
    """The lead of a list item that reads as a vendor name, not a link label or a policy's title."""
    return _short(text, 80, 8) and text[0].isalnum() and _NOT_AN_ITEM_NAME.search(text) is None


def is_prose_name(text: str) -> bool:
    """A heading or a bold phrase in prose that reads as a vendor name, not a note or a sentence."""
    return _short(text, 60, 6) and _NOT_A_PROSE_NAME.search(text) is None


def has_legal_form(name: str) -> bool:
    """Whether a name carries a legal form anywhere in it ("Acme S.A.", "Acme GmbH & Co. KG")."""
    return not LEGAL_SUFFIXES.isdisjoint(words(name.casefold().replace(".", "")))
