"""The date a page declares for itself ("Last updated: May 17 2018", "Version 1.1, 22.6.2026")."""

from __future__ import annotations

import re
from datetime import date, datetime

_MONTHS = {
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "sept": 9,
}
_MONTHS.update({name[:3]: number for name, number in list(_MONTHS.items())})

_ANCHORS = ("last", "updated", "revised", "modified", "effective", "published", "version", "更新", "生效")
_KEYWORD = re.compile(
    r"(?:最后)?(?:last[\s-]+(?:modified|updated|revised|amended|changed|reviewed)(?:\s+on)?"
    r"|(?:updated|revised|modified)(?:\s+(?:on|as\s+of))?"
    r"|effective(?:\s+date|\s+as\s+of|\s+from|\s+on)?"
    r"|published(?:\s+on)?"
    r"|version\s+v?\d+(?:\.\d+)*\s*[,:;-]"
    r"|更新(?:日期|时间)?|生效日期)",
)
_GAP = re.compile(r"[\s:：*_\-–—,.()\[\]|]*(?:(?:on|as\s+of|from|date)\b[\s:]*)?")
_ORDINAL = r"(?:st|nd|rd|th)?"
_MONTH_FIRST = re.compile(rf"([A-Za-z]{{3,9}})\.?,?\s+(\d{{1,2}}){_ORDINAL},?\s+(\d{{4}})\b")
_DAY_FIRST = re.compile(rf"(\d{{1,2}}){_ORDINAL}\s+(?:of\s+)?([A-Za-z]{{3,9}})\.?,?\s+(\d{{4}})\b")
_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b")
_NUMERIC = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})\b")
_CJK = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_TOKEN = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_WINDOW = 48
_HEAD_CHARS = 6000  # characters after the keyword in which the date must start
_FIRST_PIECE = 1024
# Below this, lowercasing the whole text costs less than searching its top twice (the top, then
# everything when the date is further down, as on most pages with a long menu).
_BIG_TEXT = 100_000


def _make(year: int, month: int, day: int) -> date | None:
    if year < 100:
        year += 2000
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month(name: str) -> int | None:
    return _MONTHS.get(name.lower().rstrip("."))


def _named(text: str) -> date | None:
    match = _MONTH_FIRST.match(text)
    if match and (month := _month(match.group(1))):
        return _make(int(match.group(3)), month, int(match.group(2)))
    match = _DAY_FIRST.match(text)
    if match and (month := _month(match.group(2))):
        return _make(int(match.group(3)), month, int(match.group(1)))
    return None


def _numeric(text: str) -> date | None:
    match = _ISO.match(text)
    if match:
        return _make(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    match = _CJK.match(text)
    if match:
        return _make(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    match = _NUMERIC.match(text)
    if not match:
        return None
    first, second, year = int(match.group(1)), int(match.group(3)), int(match.group(4))
    if first > 12 >= second:
        return _make(year, second, first)  # 22.6.2026: day first
    if second > 12 >= first:
        return _make(year, first, second)  # 06/22/2026: month first
    return None  # 03/04/2024 could be either: needs ParseRules.date_format


def parse_date(text: str, date_format: str | None = None) -> date | None:
    """A date at the start of ``text`` in any of the supported formats."""
    text = text.strip()
    if date_format:
        try:
            return datetime.strptime(text, date_format).date()
        except ValueError:
            pass
    return _named(text) or _numeric(text)


def _date_after(text: str, start: int, date_format: str | None) -> date | None:
    window = text[start : start + _WINDOW]
    gap = _GAP.match(window)
    rest = window[gap.end() :] if gap else window
    if date_format and (token := _TOKEN.match(rest)):
        try:
            return datetime.strptime(token.group(0), date_format).date()
        except ValueError:
            pass
    return _named(rest) or _numeric(rest)


def _keyword_starts(text: str, lo: int, hi: int) -> list[int]:
    """Where a keyword may start in ``text[lo:hi]``: plain substring search is far faster than a
    regex scan. (No anchor overlaps itself, so searching piece by piece misses none.)"""
    starts: list[int] = []
    for anchor in _ANCHORS:
        end = hi + len(anchor) - 1
        index = text.find(anchor, lo, end)
        while index != -1:
            starts.append(index)
            index = text.find(anchor, index + len(anchor), end)
    return sorted(starts)


def _first_date(text: str, date_format: str | None) -> date | None:
    """The date after the first keyword that has one. The keywords are looked for piece by piece
    from the top, in pieces that double in size: the date is usually early, and an absent
    keyword costs a scan of all the text searched."""
    lo, size = 0, _FIRST_PIECE
    while lo < len(text):
        hi = lo + size
        for start in _keyword_starts(text, lo, hi):
            if start and text[start].isascii() and text[start - 1].isalnum():
                continue  # inside a word ("outdated", "blast")
            match = _KEYWORD.match(text, start)
            if match is None:
                continue
            found = _date_after(text, match.end(), date_format)
            if found is not None:
                return found
        lo, size = hi, 2 * size
    return None


def _lower_ascii(text: str) -> str:
    """``text`` with A-Z lowercased and every other character as it was. Every keyword, month
    name and digit matched here is ASCII or caseless (CJK); str.lower() converts every letter,
    several times slower on text with any non-ASCII character (benchmarks/README.md)."""
    if text.isascii():
        return text.lower()
    return text.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


def declared_date(text: str, date_format: str | None = None) -> date | None:
    """The first "Last updated"-style date in ``text``; None when the page declares none."""
    if len(text) > _BIG_TEXT:  # the date is usually near the top: look there before lowercasing it all
        found = _first_date(_lower_ascii(text[: _HEAD_CHARS + _WINDOW]), date_format)
        if found is not None:
            return found
    return _first_date(_lower_ascii(text), date_format)
