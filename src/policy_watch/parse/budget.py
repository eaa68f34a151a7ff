"""What one page may cost to parse: its size, its markup, and time. Past any limit the page is
refused with a ParseError naming the limit, so a hostile or broken page fails its own vendor
and never stalls a run.

The tree builder's own cost grows with the square of the number of attributes on one element
(each new attribute is checked against those before it): one ``<table>`` with 300,000
attributes would take minutes. ``check_markup`` estimates that cost in one linear scan before
the tree is built. Every other step grows with the page; the deadline is checked in the loops
over tables, rows and items, so a page that is merely slow to read also ends in time.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from policy_watch.errors import BudgetError

MAX_PAGE_BYTES = 32 * 1024 * 1024
PARSE_SECONDS = 60.0
# Sum over elements of (attributes on the element)²: 4e8 is about one second of tree building.
MAX_ATTRIBUTE_WORK = 400_000_000
_SEPARATORS = b" \t\n\r\f/\"'"  # what may come before an attribute
_FEW_ATTRIBUTES = 64  # elements with no more attributes than this cost nothing worth counting

# A start tag as the HTML tokenizer reads it: a name, then attributes (a name may begin with
# "=") whose quoted values may hold anything, up to ``>``. Possessive quantifiers keep the scan
# linear.
_START_TAG = re.compile(
    rb"<[A-Za-z][^\s/>]*+((?:[\s/]++(?:[^\s/>][^\s/>=]*+(?:\s*+=\s*+(?:\"[^\"]*+\"|'[^']*+'|[^\s>]*+))?+)?+)*+)"
)
_ATTRIBUTE = re.compile(rb"[^\s/>][^\s/>=]*+(?:\s*+=\s*+(?:\"[^\"]*+\"|'[^']*+'|[^\s>]*+))?+")


@dataclass(frozen=True, slots=True)
class Deadline:
    """The moment parsing one page must end by; ``check`` raises once it has passed."""

    ends: float
    seconds: float
    source: str | None = None

    @classmethod
    def after(cls, seconds: float, source: str | None = None) -> Deadline:
        return cls(time.monotonic() + seconds, seconds, source)

    def check(self) -> None:
        if time.monotonic() >= self.ends:
            raise BudgetError(
                f"parsing took longer than {self.seconds:g} s; page refused", source=self.source
            )


NO_DEADLINE = Deadline(float("inf"), float("inf"))


def check_size(body: bytes | str, source: str | None, limit: int = MAX_PAGE_BYTES) -> None:
    size = len(body)
    if size > limit:
        raise BudgetError(f"page too large to parse: {size} bytes (limit {limit})", source=source)


def check_markup(body: bytes | str, source: str | None, limit: int = MAX_ATTRIBUTE_WORK) -> None:
    """Refuse markup whose tree would take too long to build: elements with thousands of attributes."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    # Every attribute follows whitespace, a "/" or a closing quote: their count bounds the page's
    # attributes, and the sum of squares by its square. Most pages are refused by nothing and
    # need no scan; counting those bytes (one pass that drops them) is far cheaper than the tag
    # scan below.
    bound = len(data) - len(data.translate(None, _SEPARATORS))
    if bound * bound <= limit:
        return
    work, worst = 0, 0
    min_length = 2 * _FEW_ATTRIBUTES  # an attribute takes at least two bytes: a space and a letter
    for match in _START_TAG.finditer(data):
        start, end = match.span(1)
        if end - start <= min_length:
            continue
        count = sum(1 for _ in _ATTRIBUTE.finditer(data, start, end))
        if count > _FEW_ATTRIBUTES:
            work += count * count
            worst = max(worst, count)
            if work > limit:
                raise BudgetError(
                    f"markup too costly to parse: an element with {worst} attributes; page refused",
                    source=source,
                )
