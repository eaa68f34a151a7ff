"""Per-vendor CSS rules: used instead of the built-in layouts, and clear errors when they miss."""

from __future__ import annotations

import pytest

from policy_watch.errors import ParseError
from policy_watch.models import ParseRules
from policy_watch.parse import LAYOUTS, PARSER_VERSION, parse_page

PAGE = """<html><head><title>Vendors</title></head><body>
<h2>Hosting</h2>
<table><tr><th>Vendor</th><th>Purpose</th></tr><tr><td>Table Vendor</td><td>Shown by the table layout</td></tr></table>
<ul class="vendors">
  <li><span class="n">Scaleway</span> <em>Compute</em> <i>France</i></li>
  <li><span class="n">Crisp</span> <em>Chat</em></li>
  <li><em>no name here</em></li>
</ul>
</body></html>"""


def test_rules_replace_the_built_in_layouts() -> None:
    rules = ParseRules(row="ul.vendors > li", entity=".n", purpose="em", country="i")
    page = parse_page(PAGE, rules=rules)
    assert [(e.section, e.entity, e.purpose, e.country) for e in page.entries] == [
        ("Hosting", "Scaleway", "Compute", "France"),
        ("Hosting", "Crisp", "Chat", ""),
    ]


def test_rules_without_entity_selector_use_the_row_text() -> None:
    page = parse_page(PAGE, rules=ParseRules(row="ul.vendors .n"))
    assert [e.entity for e in page.entries] == ["Scaleway", "Crisp"]


def test_rules_with_only_a_date_format_keep_the_heuristics() -> None:
    page = parse_page(PAGE, rules=ParseRules(date_format="%d/%m/%Y"))
    assert [e.entity for e in page.entries] == ["Table Vendor"]


def test_rules_matching_nothing_say_so() -> None:
    with pytest.raises(ParseError, match=r"rules.row 'div.vendor' matched nothing"):
        parse_page(PAGE, rules=ParseRules(row="div.vendor", entity=".n"), source="acme")


def test_rules_rows_without_entities_say_so() -> None:
    with pytest.raises(ParseError, match=r"matched 3 elements, none with an entity"):
        parse_page(PAGE, rules=ParseRules(row="ul.vendors > li", entity="b"))


def test_invalid_selector_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"rules.entity: invalid CSS selector"):
        parse_page(PAGE, rules=ParseRules(row="li", entity="span:::x"))


def test_parse_error_names_the_source() -> None:
    with pytest.raises(ParseError) as caught:
        parse_page("<html><body><p>Down for maintenance</p></body></html>", source="acme")
    assert caught.value.source == "acme"
    assert str(caught.value).startswith("acme: no subprocessor table or list found")


def test_public_constants() -> None:
    assert PARSER_VERSION
    assert list(LAYOUTS) == ["tables", "lists", "cards", "headings", "bold-prose"]
