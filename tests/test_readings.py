"""Reading a page again (reparse, a changed config or parser) adds a reading beside what was
recorded and never rewrites it: snapshots, changes, windows, alerts and decisions stay as they were."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

from pwtest import ZENDESK, PageServer, cli, recent, write_config, zendesk_page

VENDOR = "Zendesk Connect"
NAMES = [
    "Acme Hosting Inc.",
    "Beta Mail Ltd",
    "Gamma Analytics GmbH",
    "Delta Support BV",
    "Epsilon Storage SA",
]


def _dump(db: Path, *tables: str) -> dict[str, list[Any]]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"select * from {t} order by 1, 2").fetchall() for t in tables}


RECORDED = ("snapshots", "snapshot_rows", "changes", "windows", "decisions", "outbox", "bodies")


def test_reparse_keeps_changes_attached_to_their_window(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    config = write_config(tmp_path, [(VENDOR, pages.url("/connect"))])
    assert cli(config, "run").returncode == 0
    pages.serve("/connect", zendesk_page("v2", recent()))
    assert cli(config, "run").returncode == 0
    [before] = json.loads(cli(config, "deadlines", "--json").stdout)
    assert cli(config, "object", str(before["id"]), "--note", "asked legal").returncode == 0
    csv_before = cli(config, "changes", "--csv").stdout
    recorded = _dump(tmp_path / "pw.db", *RECORDED)

    out = cli(config, "reparse")
    assert out.returncode == 0, out.stderr

    [after] = json.loads(cli(config, "deadlines", "--all", "--json").stdout)
    assert after["changes"] == before["changes"] > 0 and after["entities"] == before["entities"]
    assert [d["note"] for d in after["decisions"]] == ["asked legal"]
    csv_after = cli(config, "changes", "--csv").stdout
    assert csv_after == csv_before
    opened = [r for r in csv.DictReader(io.StringIO(csv_after)) if r["kind"] == "added"]
    assert opened and all(r["window_opens"] and r["deadline"] for r in opened)
    assert _dump(tmp_path / "pw.db", *RECORDED) == recorded
    assert f"{VENDOR}: reads as recorded (18 entries)" in out.stdout
    # and the next run, which reads the page again once, still finds nothing new
    again = cli(config, "run", "--json")
    assert json.loads(again.stdout)["vendors"][0]["status"] == "unchanged", again.stdout
    assert _dump(tmp_path / "pw.db", "changes", "windows", "outbox") == {
        k: recorded[k] for k in ("changes", "windows", "outbox")
    }


def _page(cls: str, names: list[str] = NAMES) -> bytes:
    rows = "".join(
        f'<div class="{cls}"><span class="who">{n}</span> <span class="what">Hosting</span></div>'
        for n in names
    )
    return f"<html><body><h1>Our partners</h1><p>About our partners.</p>{rows}</body></html>".encode()


def _config(tmp_path: Path, url: str, rules: str, hook: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[settings]\ndatabase = "pw.db"\nalert_retry_minutes = 0\nretries = 0\n\n'
        f'[[notify]]\nname = "hook"\nurl = "{hook}"\n\n'
        f'[[vendors]]\nname = "Cards"\nurl = "{url}"\n{rules}\n'
    )
    return path


def _show(config: Path) -> dict[str, Any]:
    r = cli(config, "show", "Cards", "--json")
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def test_reparse_with_broken_rules_keeps_the_recorded_list(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/cards", _page("sp"))
    hook = f"json://127.0.0.1:{pages.port}/hook"
    good = '[vendors.parse]\nrow = ".sp"\nentity = ".who"'
    config = _config(tmp_path, pages.url("/cards"), good, hook)
    assert cli(config, "run").returncode == 0
    recorded = _dump(tmp_path / "pw.db", *RECORDED)

    _config(tmp_path, pages.url("/cards"), "", hook)  # the selectors removed: the page is unreadable
    out = cli(config, "reparse")
    assert out.returncode == 0, out.stderr
    assert [e["entity"] for e in _show(config)["entries"]] == NAMES
    table = cli(config, "show", "Cards")
    assert all(n in table.stdout for n in NAMES), table.stdout
    assert _dump(tmp_path / "pw.db", *RECORDED) == recorded
    assert "the recorded list (5 entries) stays the baseline" in out.stdout, out.stdout

    # rules that read more: a new reading beside the recorded one, which stays as it was
    _config(tmp_path, pages.url("/cards"), good + '\npurpose = ".what"', hook)
    out = cli(config, "reparse")
    assert "page read again" in out.stdout and "5 entries (recorded: 5)" in out.stdout, out.stdout
    shown = _show(config)
    assert [(e["entity"], e["purpose"]) for e in shown["entries"]] == [(n, "Hosting") for n in NAMES]
    now = _dump(tmp_path / "pw.db", *RECORDED)
    assert now["snapshots"][: len(recorded["snapshots"])] == recorded["snapshots"]
    assert len(now["snapshots"]) == len(recorded["snapshots"]) + 1
    assert {k: now[k] for k in ("changes", "windows", "outbox", "bodies")} == {
        k: recorded[k] for k in ("changes", "windows", "outbox", "bodies")
    }
    hist = json.loads(cli(config, "history", "Cards", "--json").stdout)
    assert [(h["entries"], h["reading_of"]) for h in hist] == [(5, None), (5, hist[0]["id"])]
    assert cli(config, "run").returncode == 0
    assert pages.posts == [], "a new reading of the same page is not a change"


def test_a_fixed_config_applies_to_a_page_that_did_not_change(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/cards", _page("sp"), ETag='"v1"')
    hook = f"json://127.0.0.1:{pages.port}/hook"
    config = _config(tmp_path, pages.url("/cards"), '[vendors.parse]\nrow = ".sp"\nentity = ".who"', hook)
    assert cli(config, "run").returncode == 0
    pages.serve("/cards", _page("partner"), ETag='"v2"')  # a redesign: the selectors find nothing
    held = cli(config, "run", "--json")
    assert json.loads(held.stdout)["vendors"][0]["status"] == "suspect", held.stdout
    alarms = len(pages.posts)
    assert alarms == 1 and "structure" in pages.posts[0]["title"]

    fixed = _config(tmp_path, pages.url("/cards"), '[vendors.parse]\nrow = ".partner"\nentity = ".who"', hook)
    parsed = cli(fixed, "parse", pages.url("/cards"), "--vendor", "Cards", "--json")
    assert len(json.loads(parsed.stdout)["entries"]) == 5
    n_seen = len(pages.requests)
    r = cli(fixed, "run", "--vendor", "Cards", "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["vendors"][0]["status"] == "unchanged", r.stdout
    got = [x for x in pages.requests[n_seen:] if x[0] == "GET"]
    assert got and got[0][2].get("If-None-Match") == '"v2"', "the page was asked for conditionally (304)"
    assert len(pages.posts) == alarms, "no false alert"
    assert [e["entity"] for e in _show(fixed)["entries"]] == NAMES

    # a rule that reads more from the same page: the new reading is the baseline, with no alert
    _config(
        tmp_path,
        pages.url("/cards"),
        '[vendors.parse]\nrow = ".partner"\nentity = ".who"\npurpose = ".what"',
        hook,
    )
    r = cli(fixed, "run", "--json")
    vendor = json.loads(r.stdout)["vendors"][0]
    assert vendor["status"] == "unchanged" and "page read again" in vendor["notice"], vendor
    assert {e["purpose"] for e in _show(fixed)["entries"]} == {"Hosting"}
    assert len(pages.posts) == alarms
    plain = cli(fixed, "run")
    assert plain.returncode == 0 and "page read again" not in plain.stderr  # once, not every run
    # and a real change after all that is reported as usual
    pages.serve("/cards", _page("partner", [*NAMES, "Zeta Cloud Inc."]), ETag='"v3"')
    r = cli(fixed, "run", "--json")
    changes = json.loads(r.stdout)["vendors"][0]["changes"]
    assert [(c["kind"], c["entity"]) for c in changes] == [("added", "Zeta Cloud Inc.")]


def test_a_new_reading_of_the_baseline_does_not_release_a_suspect_page(
    tmp_path: Path, pages: PageServer
) -> None:
    pages.serve("/cards", _page("sp"), ETag='"v1"')
    hook = f"json://127.0.0.1:{pages.port}/hook"
    rules = '[vendors.parse]\nrow = ".sp"\nentity = ".who"'
    config = _config(tmp_path, pages.url("/cards"), rules, hook)
    assert cli(config, "run").returncode == 0
    pages.serve("/cards", _page("partner"), ETag='"v2"')  # a redesign the rules cannot read
    assert json.loads(cli(config, "run", "--json").stdout)["vendors"][0]["status"] == "suspect"
    # rules that read the old page better, and the new one still not at all
    _config(tmp_path, pages.url("/cards"), rules + '\npurpose = ".what"', hook)
    first = json.loads(cli(config, "run", "--json").stdout)["vendors"][0]
    assert first["status"] == "suspect" and "page read again" in first["notice"], first
    for _ in range(2):  # the page stays held on later runs (304), with no second alarm
        later = cli(config, "run", "--json")
        assert later.returncode == 1 and json.loads(later.stdout)["vendors"][0]["status"] == "suspect", (
            later.stdout
        )
    assert [p["title"] for p in pages.posts] == ["Cards: page structure changed — check it"]
    assert {e["purpose"] for e in _show(config)["entries"]} == {"Hosting"}
