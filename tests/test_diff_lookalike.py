"""Look-alike names: a removal and an addition whose names read the same say what differs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from pwtest import PageServer, cli, write_config

from policy_watch import render
from policy_watch.diff import diff_entries
from policy_watch.lookalike import skeleton, visible
from policy_watch.models import ChangeKind, Entry

SEC = "Subprocessors"


@pytest.mark.parametrize(
    ("real", "fake", "what"),
    [
        ("Google LLC", "Goo\u200bgle LLC", "an invisible character (U+200B)"),
        ("Amazon Web Services, Inc.", "\u0410mazon Web Services, Inc.", "a Cyrillic letter (\u0410, U+0410)"),
        ("Okta, Inc.", "\u039fkta, Inc.", "a Greek letter (\u039f, U+039F)"),
        (
            "Stripe",
            "Stri\u2060pe\u00ad",
            "an invisible character (U+2060) and an invisible character (U+00AD)",
        ),
    ],
)
def test_lookalike_swap_is_a_removal_and_an_addition_that_say_what_differs(
    real: str, fake: str, what: str
) -> None:
    old = [Entry(SEC, real, "Hosting", "United States"), Entry(SEC, "Other", "Email", "Ireland")]
    new = [Entry(SEC, fake, "Hosting", "United States"), Entry(SEC, "Other", "Email", "Ireland")]
    changes = diff_entries(old, new)
    assert sorted((c.kind, c.entity) for c in changes) == sorted(
        [(ChangeKind.ADDED, fake), (ChangeKind.REMOVED, real)]
    )
    added = next(c for c in changes if c.kind is ChangeKind.ADDED)
    removed = next(c for c in changes if c.kind is ChangeKind.REMOVED)
    assert added.note == f"name differs from {real!r} by {what}"
    assert removed.note is not None and removed.note.endswith(f"by {what}")
    # The alert lines no longer read the same, in every format.
    msg = render.change_message(
        "Acme", "https://acme.example/subprocessors", changes, None, date(2026, 12, 1)
    )
    for body in (msg.text, msg.markdown, msg.html):
        assert "invisible character" in body or "letter" in body
    line_added = next(line for line in msg.text.splitlines() if line.startswith("- Added"))
    line_removed = next(line for line in msg.text.splitlines() if line.startswith("- Removed"))
    assert line_added.removeprefix("- Added") != line_removed.removeprefix("- Removed")


def test_names_that_differ_visibly_get_no_note() -> None:
    changes = diff_entries([Entry(SEC, "Mailgun")], [Entry(SEC, "Snowflake")])
    assert [c.note for c in changes] == [None, None]
    assert all("note" not in c.to_json() for c in changes)


def test_visible_form_and_skeleton() -> None:
    assert visible("Goo\u200bgle\ufeff LLC") == "Google LLC"
    assert visible("\uff27oogle") == "Google"  # fullwidth G, by NFKC
    assert skeleton("\u0410mazon, Inc.") == skeleton("Amazon Inc") == "amazon inc"
    assert skeleton("Amazon") != skeleton("Amazons")


def test_who_finds_an_entry_under_its_visible_name(tmp_path: Path, pages: PageServer) -> None:
    rows = "".join(
        f"<tr><td>{name}</td><td>Hosting</td><td>US</td></tr>"
        for name in ("Goo\u200bgle LLC", "Mail\ufeffgun Inc.", "Okta, Inc.")
    )
    pages.serve(
        "/sub",
        "<html><head><title>Subprocessors</title></head><body><h2>Subprocessors</h2><table>"
        f"<tr><th>Entity Name</th><th>Purpose</th><th>Country</th></tr>{rows}</table></body></html>",
    )
    config = write_config(tmp_path, [("Acme", pages.url("/sub"))])
    assert cli(config, "run").returncode == 0
    found = json.loads(cli(config, "who", "Google", "--json").stdout)
    assert [(r["vendor"], r["entity"]) for r in found] == [("Acme", "Goo\u200bgle LLC")]
    found = json.loads(cli(config, "who", "Mailgun", "--json").stdout)
    assert [r["entity"] for r in found] == ["Mail\ufeffgun Inc."]
    # What a user pasted with an invisible character in it finds the plain name too.
    assert [r["entity"] for r in json.loads(cli(config, "who", "Ok\u200bta", "--json").stdout)] == [
        "Okta, Inc."
    ]
