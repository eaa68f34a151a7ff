"""Every kind of source through the real command line, against a local server, over two versions:
embedded page data, PDFs and pages a browser renders. The exact changes are checked."""

from __future__ import annotations

import json
from pathlib import Path

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
    return ('<!doctype html><html><head><title>Trust</title><script src="/_next/app.js" defer></script></head>'
            f'<body><div id="__next"></div><script id="__NEXT_DATA__" type="application/json">{blob}</script>'
            "</body></html>")  # fmt: skip


def test_next_data_page_two_versions(tmp_path: Path, pages: PageServer) -> None:
    v1 = [{"name": "Amazon Web Services", "purpose": "Hosting", "country": "United States"},
          {"name": "Sentry", "purpose": "Error tracking", "country": "United States"}]  # fmt: skip
    pages.serve("/trust", next_page(v1, "2026-01-10"))
    config = write_config(tmp_path, [("Portal", pages.url("/trust"))])

    shown = cli(config, "parse", pages.url("/trust"))
    assert shown.returncode == 0, shown.stderr
    assert "read by: embedded data" in shown.stdout and "Sentry" in shown.stdout

    run_ok(config, "1 baseline")
    v2 = [{"name": "Amazon Web Services", "purpose": "Hosting", "country": "United States, Ireland"},
          {"name": "Datadog", "purpose": "Monitoring", "country": "United States"}]  # fmt: skip
    pages.serve("/trust", next_page(v2, "2026-02-01"))
    run_ok(config, "1 changed")
    assert changes(config) == sorted([
        ("added", "", "Datadog", None, None, None),
        ("removed", "", "Sentry", None, None, None),
        ("changed", "", "Amazon Web Services", "country", "United States", "United States, Ireland"),
    ])  # fmt: skip
