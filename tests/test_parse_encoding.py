"""Pages are decoded by the HTTP charset, then the document's own declaration, then detection."""

from __future__ import annotations

import pytest

from policy_watch.parse import decode_body, parse_page

_TEXT = "Café Société – München GmbH"
_PURPOSE = "Hébergement “cloud” et données"
_BODY = (
    "<h2>Sous-traitants ultérieurs</h2><table><tr><th>Subprocessor</th><th>Purpose</th><th>Location</th></tr>"
    f"<tr><td>{_TEXT}</td><td>{_PURPOSE}</td><td>Österreich</td></tr></table>"
    "<p>Nous utilisons des sous-traitants situés en Europe, à Zürich et à Malmö.</p>"
)


def _page(meta: str) -> bytes:
    return f"<html><head>{meta}<title>Liste</title></head><body>{_BODY}</body></html>".encode("cp1252")


@pytest.mark.parametrize(
    "meta",
    [
        "",
        '<meta charset="windows-1252">',
        '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
    ],
)
def test_windows_1252_page_without_header_charset(meta: str) -> None:
    page = parse_page(_page(meta), content_type="text/html")
    entry = page.entries[0]
    assert (entry.entity, entry.purpose, entry.country) == (_TEXT, _PURPOSE, "Österreich")


def test_header_charset_wins_over_meta() -> None:
    body = _page('<meta charset="utf-8">')
    assert _TEXT in decode_body(body, "text/html; charset=windows-1252")


def test_latin1_label_reads_as_windows_1252() -> None:
    assert (
        decode_body("“quoted” – dash".encode("cp1252"), "text/html; charset=ISO-8859-1") == "“quoted” – dash"
    )


def test_utf8_without_any_declaration() -> None:
    assert decode_body(_TEXT.encode("utf-8"), None) == _TEXT


def test_utf8_bom() -> None:
    assert decode_body(b"\xef\xbb\xbf" + _TEXT.encode("utf-8"), None) == _TEXT


def test_unknown_charset_label_falls_back() -> None:
    assert decode_body(_TEXT.encode("utf-8"), "text/html; charset=x-no-such-thing") == _TEXT


def test_str_body_is_used_as_is() -> None:
    page = parse_page(_BODY)
    assert page.entries[0].entity == _TEXT
