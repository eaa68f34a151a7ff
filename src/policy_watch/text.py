"""Plain-text rules the parser, the differ and the name readers share. Pure, standard library only.

Whitespace folding, punctuation read as a break between words, and the legal forms a company
name may carry ("Inc.", "GmbH", "K.K."): one definition each, so that what the parser calls a
company name and what the differ and ``meaning`` drop from one agree.
"""

from __future__ import annotations

import re

# Anything but a letter or a digit (an underscore too): a break between words.
PUNCTUATION = re.compile(r"[\W_]+")

# Legal forms, compared as case-folded words without dots ("S.A.R.L." is "sarl"):
# "GitHub Germany GmbH" is GitHub Germany.
LEGAL_SUFFIXES = frozenset(
    {
        "inc",
        "incorporated",
        "llc",
        "ltd",
        "limited",
        "gmbh",
        "corp",
        "corporation",
        "co",
        "company",
        "sa",
        "sas",
        "sarl",
        "bv",
        "nv",
        "plc",
        "pty",
        "pte",
        "ag",
        "ab",
        "as",
        "oy",
        "srl",
        "spa",
        "lp",
        "llp",
        "kk",
        "gk",
        "kabushiki",
        "kaisha",
        "ulc",
        "pbc",
        "se",
        "sro",
        "holding",
        "holdings",
    }
)


def collapse(text: str) -> str:
    """Runs of whitespace (no-break spaces and line breaks too) as one space, stripped."""
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters and digits, whatever punctuation stood between them."""
    return PUNCTUATION.sub(" ", text).split()
