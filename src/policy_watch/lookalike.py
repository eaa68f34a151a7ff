"""Names that look alike but are not the same text. Pure.

A zero-width space inside "Goo​gle LLC", or a Cyrillic "А" in "Аmazon", makes another name that
a reader cannot tell from the real one. The differ rightly reports such a name as removed and
another added; these helpers say what differs, so the two lines do not read the same, and give
the visible form a reader would type to find it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from policy_watch.text import words

# Characters that take no space or show as blank, beyond the "format" category (Cf).
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800")
# Letters of other scripts drawn like a Latin letter (a subset of Unicode's confusables.txt:
# those of Cyrillic, Greek and Latin that fonts draw the same).
_LATIN_LOOKALIKES = str.maketrans(
    "АВЕКМНОРСТУХЅІЈԚԜҮӀаеорсухѕіјԁԛԝһӏΑΒΕΖΗΙΚΜΝΟΡΤΥΧοινκρıɡ",
    "ABEKMHOPCTYXSIJQWYIaeopcyxsijdqwhlABEZHIKMNOPTYXoivkpig",
)
_MAX_NAMED = 3


def _invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cf" or char in _BLANK_LETTERS


def visible(name: str) -> str:
    """A name as a reader sees it and would type it: NFKC, invisible characters removed."""
    return "".join(c for c in unicodedata.normalize("NFKC", name) if not _invisible(c))


def skeleton(name: str) -> str:
    """What a name looks like: its visible form with look-alike letters as the Latin ones,
    case-folded, punctuation and spaces collapsed."""
    text = visible(name).translate(_LATIN_LOOKALIKES).casefold()
    return " ".join(words(text))


def reveal(name: str) -> str:
    """The name with what a reader cannot see written out: ``Goo[U+200B]gle LLC``."""
    return "".join(f"[U+{ord(c):04X}]" if _invisible(c) else c for c in name)


def _odd_characters(name: str) -> list[str]:
    """What in ``name`` a reader would not notice: invisible characters, look-alike letters."""
    out: list[str] = []
    for char in unicodedata.normalize("NFKC", name):
        if _invisible(char):
            what = f"an invisible character (U+{ord(char):04X})"
        elif char.translate(_LATIN_LOOKALIKES) != char:
            script = unicodedata.name(char, "").split(" ")[0].title() or "look-alike"
            what = f"a {script} letter ({char}, U+{ord(char):04X})"
        else:
            continue
        if what not in out:
            out.append(what)
    return out


def difference(name: str, other: str) -> str:
    """``name differs from 'Google LLC' by an invisible character (U+200B)``."""
    mine = _odd_characters(name)
    odd = mine + [w for w in _odd_characters(other) if w not in mine]
    if not odd:
        odd = ["characters that look alike"]
    shown = odd[:_MAX_NAMED] + ([f"{len(odd) - _MAX_NAMED} more"] if len(odd) > _MAX_NAMED else [])
    return f"name differs from {reveal(other)!r} by {' and '.join(shown)}"


@dataclass(frozen=True, slots=True)
class LookalikeNotes:
    """Per removed and per added name: how it differs from a look-alike on the other side."""

    removed: dict[str, str] = field(default_factory=dict)
    added: dict[str, str] = field(default_factory=dict)


def lookalike_notes(removed: Iterable[str], added: Iterable[str]) -> LookalikeNotes:
    """Notes for removed and added names that look the same to a reader but are not equal."""
    by_look: dict[str, str] = {}
    for name in removed:
        by_look.setdefault(skeleton(name), name)
    notes = LookalikeNotes()
    for name in added:
        old = by_look.get(skeleton(name))
        if old is not None and old != name and skeleton(name):
            notes.added.setdefault(name, difference(name, old))
            notes.removed.setdefault(old, difference(old, name))
    return notes
