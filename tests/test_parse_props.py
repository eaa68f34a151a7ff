"""Random tables parse back to exactly the strings they were built from, whatever the markup."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_watch.parse import parse_page

# Printable text without control characters and with single spaces only between words.
_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"))
_WORD = st.text(_CHARS, min_size=1, max_size=12)
_TEXT = st.lists(_WORD, min_size=1, max_size=4).map(" ".join)
_MAYBE_TEXT = st.one_of(st.just(""), _TEXT)
_SPACE = st.sampled_from(["", " ", "  ", "\n", "\t", "&nbsp;", " &nbsp; ", "<br>", "<br/>", "\n<br>\n"])
_WRAP = st.sampled_from(
    [
        "{}",
        "<b>{}</b>",
        "<strong>{}</strong>",
        '<a href="#x">{}</a>',
        "<span>{}</span>",
        "<span><a href='/v'><b>{}</b></a></span>",
    ]
)


@st.composite
def _cell(draw: st.DrawFn, value: str) -> str:
    if not value:
        return draw(st.sampled_from(["", " ", "&nbsp;", "<br>"]))
    words = value.split(" ")
    inner = "".join(
        html.escape(word)
        + (draw(st.sampled_from([" ", "&nbsp;", "  ", "\n", " <br> "])) if i < len(words) - 1 else "")
        for i, word in enumerate(words)
    )
    return draw(_SPACE) + draw(_WRAP).format(inner) + draw(_SPACE)


_ROW = st.tuples(_TEXT, _MAYBE_TEXT, _MAYBE_TEXT)


@st.composite
def _table(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, str]]]:
    rows = draw(st.lists(_ROW, min_size=1, max_size=6))
    body = "".join(
        "<tr>" + "".join(f"<td>{draw(_cell(value))}</td>" for value in row) + "</tr>\n" for row in rows
    )
    head = "<thead><tr><th>Subprocessor</th><th>Purpose</th><th>Location</th></tr></thead>"
    return f"<h2>Subprocessors</h2><table>{head}<tbody>{body}</tbody></table>", rows


@settings(max_examples=300, deadline=None)
@given(_table())
def test_cells_round_trip(case: tuple[str, list[tuple[str, str, str]]]) -> None:
    page_html, rows = case
    page = parse_page(page_html)
    assert [(e.entity, e.purpose, e.country) for e in page.entries] == rows
    assert all(e.section == "Subprocessors" for e in page.entries)
