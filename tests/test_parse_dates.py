"""The declared "last updated" date of a page, in every format seen on real pages."""

from __future__ import annotations

from datetime import date

import pytest

from policy_watch.models import ParseRules
from policy_watch.parse import parse_page
from policy_watch.parse.dates import declared_date, parse_date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Last Modified: May 17 2018", date(2018, 5, 17)),
        ("*Last updated: February 1, 2025*", date(2025, 2, 1)),
        ("Updated 5 November 2024", date(2024, 11, 5)),
        ("last modified: 13th of Aug 2019.", date(2019, 8, 13)),
        ("Effective: 7th April 2023", date(2023, 4, 7)),
        ("Effective date: September 1, 2022", date(2022, 9, 1)),
        ("**Last Updated: 2025-09-02**", date(2025, 9, 2)),
        ("Version 1.1, 22.6.2026", date(2026, 6, 22)),
        ("Last Updated: May, 15, 2025", date(2025, 5, 15)),
        ("Published: February 14, 2023", date(2023, 2, 14)),
        ("THIS DRAFT WAS last amended on May 30th, 2018", date(2018, 5, 30)),
        ("Last updated on Sept. 3, 2021", date(2021, 9, 3)),
        ("Updated: 06/22/2026", date(2026, 6, 22)),
        ("最后更新日期：2024年3月5日", date(2024, 3, 5)),
    ],
)
def test_declared_date_formats(text: str, expected: date) -> None:
    assert declared_date(f"Intro text. {text} More text.") == expected


@pytest.mark.parametrize("text", ["Last updated: 03/04/2024", "Updated 1.2.2025", "Effective 12-11-2023"])
def test_ambiguous_numeric_dates_are_not_guessed(text: str) -> None:
    assert declared_date(text) is None


def test_date_format_settles_ambiguous_dates() -> None:
    assert declared_date("Last updated: 03/04/2024", "%d/%m/%Y") == date(2024, 4, 3)
    assert declared_date("Last updated: 03/04/2024", "%m/%d/%Y") == date(2024, 3, 4)


def test_date_format_falls_back_to_known_formats() -> None:
    assert declared_date("Last updated: May 17 2018", "%d/%m/%Y") == date(2018, 5, 17)


def test_no_date_is_none() -> None:
    assert declared_date("We update this list from time to time.") is None
    assert declared_date("Last updated: soon") is None


def test_first_date_near_the_top_wins() -> None:
    text = "Last updated: March 3, 2024. Previous version effective: January 1, 2020."
    assert declared_date(text) == date(2024, 3, 3)


def test_invalid_calendar_date_is_skipped() -> None:
    assert declared_date("Updated February 30, 2024. Last modified: March 1, 2024") == date(2024, 3, 1)


def test_parse_date_reads_a_bare_date() -> None:
    assert parse_date("7th April 2023") == date(2023, 4, 7)
    assert parse_date("2025-09-02") == date(2025, 9, 2)
    assert parse_date("03/04/2024") is None
    assert parse_date("03/04/2024", "%d/%m/%Y") == date(2024, 4, 3)


_TABLE = "<table><tr><th>Vendor</th></tr><tr><td>Acme</td></tr></table>"


def test_page_date_ignores_scripts_and_styles() -> None:
    html = (
        "<html><head><script>var s = 'Last updated: January 1, 2001';</script>"
        "<style>/* Last updated: January 2, 2002 */</style></head>"
        f"<body><script>x = 'Updated: 2003-03-03'</script><p>Last updated: June 8, 2023</p>{_TABLE}</body></html>"
    )
    assert parse_page(html).last_modified == date(2023, 6, 8)


def test_page_date_uses_rules_date_format() -> None:
    html = f"<p>Last updated: 03/04/2024</p>{_TABLE}"
    assert parse_page(html).last_modified is None
    assert parse_page(html, rules=ParseRules(date_format="%m/%d/%Y")).last_modified == date(2024, 3, 4)


def test_page_date_across_markup() -> None:
    html = f"<p>Effective date: <strong>September 1, 2022</strong></p>{_TABLE}"
    assert parse_page(html).last_modified == date(2022, 9, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("İstanbul, São Paulo, Zürich — offices. LAST UPDATED: March 4, 2025", date(2025, 3, 4)),
        ("Ünsere Liste (Übersicht) " * 400 + "Last Updated 2024-11-02", date(2024, 11, 2)),
        ("ÉTÉ " * 30_000 + "Effective Date: 1 July 2023", date(2023, 7, 1)),  # past the first look
    ],
)
def test_keywords_after_non_ascii_text(text: str, expected: date) -> None:
    assert declared_date(text) == expected
