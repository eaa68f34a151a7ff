"""PDF lists read through parse_page: tables over pages, wrapped cells, lists without ruling, and
the PDFs that cannot be read (scans, passwords, bombs)."""

from __future__ import annotations

from datetime import date

import pytest
from pdfmake import encrypted, many_pages, ruled, scanned, stream_bomb, unruled

from policy_watch.errors import ParseError
from policy_watch.parse import parse_page
from policy_watch.parse.pdf import MAX_PAGES

LONG = "Hosting and storage of customer data for the service, with encrypted backups"
ROWS = [
    (
        f"Vendor {i:02d} Ltd.",
        LONG if i % 7 == 0 else "Hosting",
        "United States, Ireland, Germany" if i % 5 == 0 else "US",
    )
    for i in range(70)
]


def test_ruled_table_over_pages_with_sections_and_date() -> None:
    body = ruled([("Infrastructure", ROWS[:55]), ("Customer support", ROWS[55:])])
    page = parse_page(body, content_type="application/pdf")
    assert page.reader == "pdf"
    assert page.last_modified == date(2026, 3, 3)
    got = [(e.section, e.entity, e.purpose, e.country) for e in page.entries]
    want = [("Infrastructure" if i < 55 else "Customer support", *row) for i, row in enumerate(ROWS)]
    assert got == want  # no header row read as an entry, no wrapped line lost, page breaks invisible


def test_pdf_found_by_its_bytes_without_a_content_type() -> None:
    page = parse_page(ruled([("Hosting", ROWS[:3])]))
    assert page.reader == "pdf" and [e.entity for e in page.entries] == [r[0] for r in ROWS[:3]]


def test_list_without_ruling_lines() -> None:
    page = parse_page(unruled(ROWS[:12]), content_type="application/pdf")
    assert page.last_modified == date(2026, 1, 5)
    assert [(e.entity, e.purpose, e.country) for e in page.entries] == ROWS[:12]


def test_scanned_pdf_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="no text layer"):
        parse_page(scanned(), content_type="application/pdf", source="https://v.example/list.pdf")


def test_encrypted_pdf_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="encrypted and needs a password"):
        parse_page(encrypted(ROWS[:3]), content_type="application/pdf")


def test_too_many_pages_is_refused() -> None:
    with pytest.raises(ParseError, match=f"pages \\(limit {MAX_PAGES}\\)"):
        parse_page(many_pages(MAX_PAGES + 1), content_type="application/pdf")


def test_stream_that_unpacks_to_hundreds_of_megabytes_is_refused() -> None:
    bomb = stream_bomb()
    assert len(bomb) < 1_000_000
    with pytest.raises(ParseError, match="unpacks to over"):
        parse_page(bomb, content_type="application/pdf")


def test_not_a_pdf_after_all() -> None:
    with pytest.raises(ParseError, match="not a readable PDF"):
        parse_page(b"%PDF-1.4\nthis is no pdf", content_type="application/pdf")
