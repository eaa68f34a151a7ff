"""End to end through the real command line: a real HTTP server, a real webhook and a real SMTP server."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pwtest import ZENDESK, PageServer, SMTPSink, body_of, cli, recent, write_config, zendesk_page

VENDOR = "Zendesk Connect"


def _setup(tmp_path: Path, pages: PageServer, smtp: SMTPSink) -> Path:
    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    return write_config(
        tmp_path,
        [(VENDOR, pages.url("/connect"))],
        notify=[f"json://127.0.0.1:{pages.port}/hook", smtp.url()],
    )


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


def test_baseline_then_changes_then_quiet(tmp_path: Path, pages: PageServer, smtp: SMTPSink) -> None:
    config = _setup(tmp_path, pages, smtp)
    db = tmp_path / "pw.db"

    first = cli(config, "run")
    assert first.returncode == 0, first.stderr
    assert "1 baseline" in first.stdout
    assert pages.posts == [] and smtp.messages == [], "a first snapshot is a baseline, never N additions"
    assert _count(db, "snapshots") == 1

    declared = recent(3)
    pages.serve("/connect", zendesk_page("v2", declared))
    second = cli(config, "run")
    assert second.returncode == 0, second.stderr
    assert "1 changed" in second.stdout

    expected = json.loads((ZENDESK / "transitions.json").read_text())[0]["changes"]
    got = json.loads(cli(config, "changes", "--json").stdout)
    key = ("kind", "section", "entity", "field", "old", "new")
    assert sorted(tuple(c[k] for k in key) for c in got) == sorted(tuple(c[k] for k in key) for c in expected)

    # The page's declared date moved forward from 2018 and is not after today: the window opens then.
    today = datetime.now(UTC).date()
    deadline = declared + timedelta(days=30)
    assert {c["deadline"] for c in got} - {None} == {deadline.isoformat()}

    assert len(pages.posts) == 1
    post = pages.posts[0]
    assert post["title"].startswith(f"{VENDOR}: 1 added, 1 removed, 2 changed")
    assert deadline.isoformat() in post["title"]
    for name in ("Snowflake Inc.", "Pendo.io, Inc.", "Philippines → Philippines, Malaysia", "Mailup, Inc."):
        assert name in post["message"]
    assert f"{(deadline - today).days} days left" in post["message"]

    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["Subject"].startswith(f"{VENDOR}: 1 added")
    html = body_of(mail, "html")
    assert "Snowflake Inc." in html and deadline.isoformat() in html
    assert "Snowflake Inc." in body_of(mail, "plain")

    snapshots = _count(db, "snapshots")
    third = cli(config, "run")
    assert third.returncode == 0, third.stderr
    assert len(pages.posts) == 1 and len(smtp.messages) == 1, "an unchanged page sends nothing"
    assert _count(db, "snapshots") == snapshots, "an unchanged page stores no new snapshot"
    assert _count(db, "fetches") == 3


def test_cosmetic_version_is_quiet_and_date_only_rule(
    tmp_path: Path, pages: PageServer, smtp: SMTPSink
) -> None:
    config = _setup(tmp_path, pages, smtp)
    for version in ("v2", "v3"):
        pages.serve("/connect", zendesk_page(version, recent()))
        assert cli(config, "run").returncode == 0
    assert pages.posts == [], "v3 only differs in markup from v2"
    pages.serve("/connect", zendesk_page("v4", recent()))
    assert cli(config, "run").returncode == 0
    assert len(pages.posts) == 1
    got = json.loads(cli(config, "changes", "--json").stdout)
    kinds = sorted((c["kind"], c["field"]) for c in got)
    assert kinds == [("changed", "country"), ("column_added", "Data Access")]
    # v4 did not move its declared date: the window opens on the detection date.
    today = datetime.now(UTC).date().isoformat()
    window = next(c for c in got if c["kind"] == "changed")
    assert window["window_opens"] == today


def test_show_history_deadlines_and_parse(tmp_path: Path, pages: PageServer, smtp: SMTPSink) -> None:
    config = _setup(tmp_path, pages, smtp)
    cli(config, "run")
    pages.serve("/connect", zendesk_page("v2", recent()))
    cli(config, "run")
    shown = json.loads(cli(config, "show", VENDOR, "--json").stdout)
    assert {e["entity"] for e in shown["entries"]} >= {"Snowflake Inc.", "Zendesk, Inc."}
    assert "Pendo.io, Inc." not in {e["entity"] for e in shown["entries"]}
    hist = json.loads(cli(config, "history", VENDOR, "--json").stdout)
    assert [h["entries"] for h in hist] == [18, 18]
    windows = json.loads(cli(config, "deadlines", "--json").stdout)
    assert len(windows) == 1 and windows[0]["vendor"] == VENDOR and windows[0]["changes"] >= 3
    parsed = json.loads(cli(None, "parse", str(ZENDESK / "v1.html"), "--json").stdout)
    assert {k: parsed[k] for k in ("last_modified", "entries")} == json.loads(
        (ZENDESK / "v1.expected.json").read_text()
    )
    assert (parsed["reader"], parsed["rendered"], parsed["hint"]) == ("html", False, None)


def test_failed_fetch_and_unreadable_page_never_remove_entities(
    tmp_path: Path, pages: PageServer, smtp: SMTPSink
) -> None:
    config = _setup(tmp_path, pages, smtp)
    pages.serve("/other", (ZENDESK / "v1.html").read_bytes())
    config = write_config(
        tmp_path,
        [(VENDOR, pages.url("/connect")), ("Other", pages.url("/other"))],
        notify=[f"json://127.0.0.1:{pages.port}/hook"],
    )
    assert cli(config, "run").returncode == 0
    pages.serve("/connect", b"Service Unavailable", status=500)
    failed = cli(config, "run")
    assert failed.returncode == 1
    assert VENDOR in failed.stderr and "HTTP 500" in failed.stderr
    assert "1 unchanged" in failed.stdout, "the other vendor is still checked"
    pages.serve("/connect", (ZENDESK / "maintenance.html").read_bytes())
    maint = cli(config, "run")
    assert maint.returncode == 1 and "structure" in maint.stderr
    assert json.loads(cli(config, "changes", "--json").stdout) == []
    alarms = [p for p in pages.posts if "structure" in p["title"]]
    assert len(alarms) == 1
    shown = json.loads(cli(config, "show", VENDOR, "--json").stdout)
    assert len(shown["entries"]) == 18, "the last good snapshot stays the baseline"
    cli(config, "run")
    assert len([p for p in pages.posts if "structure" in p["title"]]) == 1, "the alarm is sent once"
    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    back = cli(config, "run")
    assert back.returncode == 0
    assert json.loads(cli(config, "changes", "--json").stdout) == []


def test_demo_runs_offline(tmp_path: Path) -> None:
    out = cli(None, "demo", "--dir", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    assert "Alert received by the webhook: Zendesk Connect: 1 added, 1 removed, 2 changed" in out.stdout
    assert (tmp_path / "demo" / "policy_watch.db").exists()


def test_unreadable_first_page_stays_an_error(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/connect", (ZENDESK / "maintenance.html").read_bytes())
    config = write_config(tmp_path, [(VENDOR, pages.url("/connect"))])
    for _ in range(2):
        out = cli(config, "run")
        assert out.returncode == 1
        assert VENDOR in out.stderr and "no subprocessor" in out.stderr
    assert _count(tmp_path / "pw.db", "snapshots") == 0


def test_conditional_request_304_counts_as_unchanged(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes(), ETag='"v1"')
    config = write_config(tmp_path, [(VENDOR, pages.url("/connect"))])
    assert cli(config, "run").returncode == 0
    second = cli(config, "run")
    assert second.returncode == 0 and "1 unchanged" in second.stdout
    gets = [h for m, p, h in pages.requests if m == "GET"]
    assert gets[-1].get("If-None-Match") == '"v1"'
    with sqlite3.connect(tmp_path / "pw.db") as conn:
        outcomes = [r[0] for r in conn.execute("select outcome from fetches order by id")]
    assert outcomes == ["baseline", "not_modified"]
    assert _count(tmp_path / "pw.db", "snapshots") == 1


def test_run_json_summary(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    config = write_config(tmp_path, [(VENDOR, pages.url("/connect")), ("Gone", pages.url("/gone"))])
    out = cli(config, "run", "--json")
    assert out.returncode == 1
    summary = json.loads(out.stdout)
    assert summary["checked"] == 2 and summary["failed"] == 1
    by_vendor = {v["vendor"]: v for v in summary["vendors"]}
    assert by_vendor[VENDOR]["status"] == "baseline" and by_vendor[VENDOR]["entries"] == 18
    assert by_vendor["Gone"]["status"] == "error" and "HTTP 404" in by_vendor["Gone"]["error"]
    one = cli(config, "run", "--vendor", VENDOR, "--json")
    assert json.loads(one.stdout)["checked"] == 1 and one.returncode == 0
    nope = cli(config, "run", "--vendor", "Nope")
    assert nope.returncode == 2 and "Nope" in nope.stderr


def test_run_on_a_terminal_shows_progress(tmp_path: Path, pages: PageServer) -> None:
    import os
    import pty
    import subprocess
    import sys

    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    config = write_config(tmp_path, [(VENDOR, pages.url("/connect"))])
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    env.pop("CI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "policy_watch", "--config", str(config), "run"],
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "checking" in screen, screen[-500:]
    assert "checked 1 vendor: 1 baseline" in screen


def test_suspect_page_held_until_accepted(tmp_path: Path, pages: PageServer) -> None:
    import re

    v1 = (ZENDESK / "v1.html").read_bytes().decode()
    # A redesign the parser reads only in part: the first table survives, the other three are gone.
    first = v1.index("</table>") + len("</table>")
    cut = v1[:first] + re.sub(r"<table.*?</table>", "", v1[first:], flags=re.S)
    pages.serve("/connect", v1)
    config = write_config(
        tmp_path, [(VENDOR, pages.url("/connect"))], notify=[f"json://127.0.0.1:{pages.port}/hook"]
    )
    assert cli(config, "run").returncode == 0
    pages.serve("/connect", cut)
    held = cli(config, "run")
    assert held.returncode == 1 and "structure changed" in held.stderr
    assert json.loads(cli(config, "changes", "--json").stdout) == []
    assert [p["title"] for p in pages.posts] == [f"{VENDOR}: page structure changed — check it"]
    assert len(json.loads(cli(config, "show", VENDOR, "--json").stdout)["entries"]) == 18

    accepted = cli(config, "accept", VENDOR)
    assert accepted.returncode == 0, accepted.stderr
    assert "17 change(s) recorded" in accepted.stdout
    changes = json.loads(cli(config, "changes", "--json").stdout)
    assert sorted({c["kind"] for c in changes}) == ["removed"] and len(changes) == 17
    assert len(pages.posts) == 2 and "17 removed" in pages.posts[1]["title"]
    assert len(json.loads(cli(config, "show", VENDOR, "--json").stdout)["entries"]) == 1
    again = cli(config, "run")
    assert again.returncode == 0 and "1 unchanged" in again.stdout
    nothing = cli(config, "accept", VENDOR)
    assert nothing.returncode == 2 and "no suspect snapshot" in nothing.stderr
