"""Every kind of source through the real command line, against a local server, over two versions:
embedded page data, PDFs and pages a browser renders. The exact changes are checked."""

from __future__ import annotations

import json
from pathlib import Path

from pdfmake import ruled, unruled
from pwtest import PageServer, cli, write_config

KEY = ("kind", "section", "entity", "field", "old", "new")


def changes(config: Path) -> list[tuple[object, ...]]:
    out = cli(config, "changes", "--json")
    assert out.returncode == 0, out.stderr
    return sorted(tuple(c[k] for k in KEY) for c in json.loads(out.stdout))


def run_ok(config: Path, expect: str) -> None:
    out = cli(config, "run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert expect in out.stdout, out.stdout


def next_page(rows: list[dict[str, str]], updated: str) -> str:
    blob = json.dumps({"props": {"pageProps": {"updatedAt": updated, "subprocessors": rows}}})
    return (
        '<!doctype html><html><head><title>Trust</title><script src="/_next/app.js" defer></script></head>'
        f'<body><div id="__next"></div><script id="__NEXT_DATA__" type="application/json">{blob}</script>'
        "</body></html>"
    )


def test_next_data_page_two_versions(tmp_path: Path, pages: PageServer) -> None:
    v1 = [
        {"name": "Amazon Web Services", "purpose": "Hosting", "country": "United States"},
        {"name": "Sentry", "purpose": "Error tracking", "country": "United States"},
    ]
    pages.serve("/trust", next_page(v1, "2026-01-10"))
    config = write_config(tmp_path, [("Portal", pages.url("/trust"))])

    shown = cli(config, "parse", pages.url("/trust"))
    assert shown.returncode == 0, shown.stderr
    assert "read by: embedded data" in shown.stdout and "Sentry" in shown.stdout

    run_ok(config, "1 baseline")
    v2 = [
        {"name": "Amazon Web Services", "purpose": "Hosting", "country": "United States, Ireland"},
        {"name": "Datadog", "purpose": "Monitoring", "country": "United States"},
    ]
    pages.serve("/trust", next_page(v2, "2026-02-01"))
    run_ok(config, "1 changed")
    assert changes(config) == sorted(
        [
            ("added", "", "Datadog", None, None, None),
            ("removed", "", "Sentry", None, None, None),
            ("changed", "", "Amazon Web Services", "country", "United States", "United States, Ireland"),
        ]
    )


# --- PDF ------------------------------------------------------------------------------------------

ROWS = [
    (
        f"Vendor {i:02d} Ltd.",
        "Hosting and storage of customer data, with encrypted backups" if i % 6 == 0 else "Hosting",
        "US",
    )
    for i in range(50)
]


def test_pdf_url_two_versions(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/list.pdf", ruled([("Infrastructure", ROWS)]), Content_Type="application/pdf")
    config = write_config(tmp_path, [("PDF vendor", pages.url("/list.pdf"))])
    shown = cli(config, "parse", pages.url("/list.pdf"))
    assert shown.returncode == 0, shown.stderr
    assert "50 entries" in shown.stdout and "read by: pdf" in shown.stdout

    run_ok(config, "1 baseline")
    v2 = [r for r in ROWS if r[0] != "Vendor 30 Ltd."] + [("Newco GmbH", "Analytics", "Germany")]
    v2[0] = (v2[0][0], v2[0][1], "US, Ireland")
    pages.serve(
        "/list.pdf",
        ruled([("Infrastructure", v2)], updated="Last updated: March 20, 2026"),
        Content_Type="application/pdf",
    )
    run_ok(config, "1 changed")
    assert changes(config) == sorted(
        [
            ("added", "Infrastructure", "Newco GmbH", None, None, None),
            ("removed", "Infrastructure", "Vendor 30 Ltd.", None, None, None),
            ("changed", "Infrastructure", "Vendor 00 Ltd.", "country", "US", "US, Ireland"),
        ]
    )


def test_follow_link_from_a_page_to_its_pdf(tmp_path: Path, pages: PageServer) -> None:
    page = (
        '<html><body><h1>Trust documents</h1><a href="/docs/security.pdf">Security whitepaper</a>'
        '<a href="/docs/{name}">Infrastructure and Sub-processors</a></body></html>'
    )
    pages.serve("/trust", page.format(name="subprocessors-2026-03.pdf"))
    pages.serve("/docs/subprocessors-2026-03.pdf", unruled(ROWS[:10]), Content_Type="application/pdf")
    config = write_config(tmp_path, [("Linked", pages.url("/trust"))], extra='follow = "sub-processors"\n')
    run_ok(config, "1 baseline")

    # The list moves to a new address with the next edition: the link is followed again.
    pages.serve("/trust", page.format(name="subprocessors-2026-04.pdf"))
    pages.serve(
        "/docs/subprocessors-2026-04.pdf",
        unruled(
            [*ROWS[1:10], ("Okta, Inc.", "Single sign-on", "US")], published="Published: 2 February 2026"
        ),
        Content_Type="application/pdf",
    )
    run_ok(config, "1 changed")
    assert changes(config) == sorted(
        [
            ("added", "", "Okta, Inc.", None, None, None),
            ("removed", "", "Vendor 00 Ltd.", None, None, None),
        ]
    )
    fetched = [path for method, path, _ in pages.requests if method == "GET"]
    assert "/docs/security.pdf" not in fetched


def test_follow_finds_no_link(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/trust", "<html><body><a href='/other.pdf'>Pricing</a></body></html>")
    config = write_config(tmp_path, [("Linked", pages.url("/trust"))], extra='follow = "sub-processors"\n')
    out = cli(config, "run")
    assert out.returncode == 1
    assert "no link whose text or address contains 'sub-processors'" in out.stderr + out.stdout
