"""Every page under tests/fixtures/pages/ parses to its NAME.expected.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy_watch.errors import ParseError
from policy_watch.models import ParseRules
from policy_watch.parse import parse_page

PAGES = Path(__file__).parent / "fixtures" / "pages"
CASES = sorted(p.name.removesuffix(".html") for p in PAGES.glob("*.html"))


def _rules(name: str) -> ParseRules | None:
    path = PAGES / f"{name}.rules.json"
    return ParseRules(**json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None


@pytest.mark.parametrize("name", CASES)
def test_page(name: str) -> None:
    body = (PAGES / f"{name}.html").read_bytes()
    expected = json.loads((PAGES / f"{name}.expected.json").read_text(encoding="utf-8"))
    rules = _rules(name)
    if "error" in expected:
        with pytest.raises(ParseError) as caught:
            parse_page(body, rules=rules, source=name)
        assert expected["error"] in str(caught.value)
        return
    page = parse_page(body, rules=rules, source=name)
    assert page.to_json() == {"last_modified": expected["last_modified"], "entries": expected["entries"]}
    if "columns" in expected:
        assert [[section, list(names)] for section, names in page.columns] == expected["columns"]
    assert [(s, len(names)) for s, names in page.headers] == [(s, len(names)) for s, names in page.columns]


def test_headers_are_the_pages_own_texts_parallel_to_columns() -> None:
    body = (PAGES / "gitlab_v3.html").read_bytes()
    page = parse_page(body)
    columns, headers = dict(page.columns), dict(page.headers)
    assert columns["Third Party Sub-processors"] == ("entity", "country", "purpose", "GitLab Product")
    assert headers["Third Party Sub-processors"] == (
        "Third Party Entity",
        "Location",
        "Service Provided",
        "GitLab Product",
    )
    assert set(page.to_json()) == {"last_modified", "entries"}


def test_table_without_header_row_has_empty_header_texts() -> None:
    rows = "".join(
        f"<tr><td>{name} Inc.</td><td>Hosting</td><td>United States</td></tr>" for name in ("Acme", "Globex")
    )
    page = parse_page(f"<h2>Subprocessors</h2><table>{rows}</table>")
    assert page.columns == (("Subprocessors", ("entity", "purpose", "country")),)
    assert page.headers == (("Subprocessors", ("", "", "")),)


def test_headerless_table_of_names_with_legal_forms_is_read_without_a_subprocessor_heading() -> None:
    names = ("Acme S.A.", "Globex K.K.", "Initech Holdings", "Hooli SE")
    rows = "".join(f"<tr><td>{name}</td><td>Hosting</td><td>Germany</td></tr>" for name in names)
    page = parse_page(f"<h2>Our partners</h2><table>{rows}</table>")
    assert [e.entity for e in page.entries] == list(names)


def test_headerless_table_of_names_without_legal_forms_needs_a_subprocessor_heading() -> None:
    names = ("Acme", "Globex", "Initech", "Hooli")
    rows = "".join(f"<tr><td>{name}</td><td>Hosting</td><td>Germany</td></tr>" for name in names)
    with pytest.raises(ParseError):
        parse_page(f"<h2>Our partners</h2><table>{rows}</table>")
    assert len(parse_page(f"<h2>Subprocessors</h2><table>{rows}</table>").entries) == 4


def test_every_page_has_an_expectation() -> None:
    assert CASES
    for name in CASES:
        assert (PAGES / f"{name}.expected.json").exists(), name
