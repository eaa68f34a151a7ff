"""Entries read from the data a page's scripts carry (parse.embedded), through parse_page."""

from __future__ import annotations

import json
from datetime import date

import pytest

from policy_watch.errors import ParseError
from policy_watch.parse import parse_page

SHELL = '<!doctype html><html><head><title>Trust Center</title></head><body><div id="__next"></div>{}</body></html>'


def _next_data(data: object) -> str:
    blob = json.dumps({"props": {"pageProps": data}, "page": "/subprocessors", "buildId": "x"})
    return SHELL.format(f'<script id="__NEXT_DATA__" type="application/json">{blob}</script>')


def test_next_data_list_with_sections_and_date() -> None:
    data = {
        "updatedAt": "2026-03-04T10:00:00Z",
        "groups": [
            {
                "title": "Infrastructure",
                "vendors": [
                    {
                        "id": 1,
                        "companyName": "Amazon Web Services, Inc.",
                        "purpose": "Hosting",
                        "location": "United States",
                    },
                    {
                        "id": 2,
                        "companyName": "Cloudflare, Inc.",
                        "purpose": "CDN",
                        "location": ["United States", "EU"],
                    },
                ],
            },
            {
                "title": "Support",
                "vendors": [
                    {
                        "id": 3,
                        "companyName": "Zendesk, Inc.",
                        "purpose": "Support tickets",
                        "location": "United States",
                    },
                ],
            },
        ],
        "nav": [{"name": "Home", "href": "/"}, {"name": "Security", "href": "/security"}],
    }
    page = parse_page(_next_data(data).encode(), content_type="text/html")
    assert page.reader == "embedded data"
    assert page.last_modified == date(2026, 3, 4)
    got = [(e.section, e.entity, e.purpose, e.country) for e in page.entries]
    assert got == [
        ("Infrastructure", "Amazon Web Services, Inc.", "Hosting", "United States"),
        ("Infrastructure", "Cloudflare, Inc.", "CDN", "United States, EU"),
        ("Support", "Zendesk, Inc.", "Support tickets", "United States"),
    ]
    assert all(e.extra == () for e in page.entries)  # ids are not data


def test_inline_state_assignment_and_ld_json() -> None:
    state = {"subprocessors": [{"vendor": "Stripe", "description": "Payments", "country": "US"}]}
    html = SHELL.format(
        f"<script>window.__NUXT__ = {json.dumps(state)};console.log(1)</script>"
        '<script type="application/ld+json">{"@type": "WebPage", "dateModified": "2025-12-01"}</script>'
    )
    page = parse_page(html.encode())
    assert [(e.entity, e.purpose, e.country) for e in page.entries] == [("Stripe", "Payments", "US")]


def test_next_flight_pushes() -> None:
    rows = [
        {"name": "Datadog, Inc.", "purpose": "Monitoring", "region": "US"},
        {"name": "Twilio Inc.", "purpose": "SMS", "region": "US"},
    ]
    payload = '1:["$","div",null,{}]\n5:' + json.dumps({"title": "Sub-processors", "items": rows}) + "\n"
    half = len(payload) // 2
    pushes = "".join(
        f"<script>self.__next_f.push({json.dumps([1, part])})</script>"
        for part in (payload[:half], payload[half:])
    )
    page = parse_page(SHELL.format(pushes).encode())
    assert [(e.section, e.entity, e.country) for e in page.entries] == [
        ("Sub-processors", "Datadog, Inc.", "US"),
        ("Sub-processors", "Twilio Inc.", "US"),
    ]


def test_menus_and_unrelated_data_are_no_list() -> None:
    data = {"nav": [{"name": "Home", "href": "/"}], "products": [{"sku": "a1", "price": 3}]}
    with pytest.raises(ParseError, match="no subprocessor table or list found"):
        parse_page(_next_data(data).encode())


def test_markup_wins_over_script_data() -> None:
    table = "<table><tr><th>Subprocessor</th><th>Purpose</th></tr><tr><td>Okta</td><td>SSO</td></tr></table>"
    data = {"list": [{"vendor": "Other", "purpose": "x"}]}
    html = _next_data(data).replace('<div id="__next"></div>', table)
    page = parse_page(html.encode())
    assert page.reader == "html"
    assert [e.entity for e in page.entries] == ["Okta"]
