"""Alerts end to end: real email and webhook receivers, hostile page text, routing, digests, operator alerts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pwtest import ZENDESK, PageServer, SMTPSink, body_of, write_config
from test_outbox import V1, V2, V3, V4, Receiver, check, rows

from policy_watch.config import load_config


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


T0 = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)
MAINTENANCE = (ZENDESK / "maintenance.html").read_bytes()

PAGE = """<html><body><h1>Subprocessors</h1><p>Last updated: {date}</p><h2>Infrastructure</h2>
<table><thead><tr><th>Entity Name</th><th>Purpose</th><th>Country</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>"""
ROW = "<tr><td>{}</td><td>{}</td><td>{}</td></tr>"
SAFE_ROWS = [
    ROW.format("Amazon Web Services, Inc.", "Hosting", "United States"),
    ROW.format("Bob &amp; Partners Ltd", "Support", "Ireland"),
]
HOSTILE_ROWS = [
    ROW.format(
        "&lt;!channel&gt; Acme &amp; Sons &lt;@U024BE7LH&gt;",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;!here&gt;",
    ),
    ROW.format(
        "&lt;https://evil.example/x|Click here&gt; [phish](https://evil.example)", "Analytics", "Germany"
    ),
]


def page(rows_: list[str], date: str = "November 2, 2026") -> str:
    return PAGE.format(date=date, rows="".join(rows_))


def test_email_and_webhook_receive_the_alert(
    pages: PageServer, smtp: SMTPSink, hooks: Receiver, tmp_path: Path
) -> None:
    pages.serve("/z", V1)
    cfg = load_config(
        write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))], [smtp.url(), hooks.url()])
    )
    check(cfg, T0)
    pages.serve("/z", V2)
    report = check(cfg, T0 + timedelta(days=1))
    assert (report.delivered, report.pending) == (2, 0)
    title = "Zendesk Connect: 1 added, 1 removed, 2 changed — object by 2026-12-02"
    [mail] = smtp.messages
    assert mail["Subject"] == title and mail["To"] == "privacy@example.com"
    html, text = body_of(mail, "html"), body_of(mail, "plain")
    for body in (html, text):
        for entity in ("Snowflake Inc.", "Pendo.io, Inc.", "Mailup, Inc.", "Zendesk, Inc."):
            assert entity in body
        assert "Object by 2026-12-02 (26 days left)" in body
        assert "Philippines → Philippines, Malaysia" in body
    assert pages.url("/z") in html and "Other changes (they open no objection window)" in text
    [post] = hooks.posts
    assert post["title"] == title and post["type"] == "info"
    assert (
        "Changes that open the objection window (deadline 2026-12-02 · 26 days left):\n"
        "- Added: Snowflake Inc. (section Service Subprocessors)\n"
    ) in post["message"]


def test_hostile_entity_names_are_escaped_in_email_and_inert_in_the_webhook(
    pages: PageServer, smtp: SMTPSink, hooks: Receiver, tmp_path: Path
) -> None:
    pages.serve("/h", page(SAFE_ROWS))
    cfg = load_config(write_config(tmp_path, [("Hostile", pages.url("/h"))], [smtp.url(), hooks.url()]))
    check(cfg, T0)
    pages.serve("/h", page(SAFE_ROWS + HOSTILE_ROWS))
    check(cfg, T0 + timedelta(days=1))
    [mail] = smtp.messages
    assert mail["Subject"] == "Hostile: 2 added — object by 2026-12-06"  # the page date did not move
    html = body_of(mail, "html")
    assert (
        "<script" not in html
        and "<!channel" not in html
        and "<@U" not in html
        and "<https://evil" not in html
    )
    assert "&lt;!channel&gt; Acme &amp; Sons &lt;@U024BE7LH&gt;" in html
    assert "&lt;https://evil.example/x|Click here&gt;" in html
    text = body_of(mail, "plain")
    assert "<!channel> Acme & Sons <@U024BE7LH>" in text, "email's plain part is made from the escaped HTML"
    [post] = hooks.posts
    assert "‹!channel› Acme & Sons ‹@\u200dU024BE7LH›" in post["message"]
    assert "<!" not in post["message"] and "<@" not in post["message"] and "<script" not in post["message"]


def _notify_block(name: str, url: str, **opts: object) -> str:
    lines = ["[[notify]]", f'name = "{name}"', f'url = "{url}"']
    for k, v in opts.items():
        lines.append(f"{k} = " + ("true" if v is True else str(v).replace("'", '"')))
    return "\n".join(lines) + "\n\n"


def test_routing_by_vendor_and_kind_and_digest(pages: PageServer, hooks: Receiver, tmp_path: Path) -> None:
    pages.serve("/a", V1)
    pages.serve("/b", V3)
    extra = (
        _notify_block("only-a", hooks.url("/only-a"), vendors=["A"])
        + _notify_block("removals", hooks.url("/removals"), kinds=["removed"])
        + _notify_block("digest", hooks.url("/digest"), digest=True)
        + _notify_block("all", hooks.url("/all"))
    )
    cfg = load_config(write_config(tmp_path, [("A", pages.url("/a")), ("B", pages.url("/b"))], extra=extra))
    check(cfg, T0)
    pages.serve("/a", V2)  # 1 added, 1 removed, 2 changed
    pages.serve("/b", V4)  # 1 changed (country), 1 column added
    check(cfg, T0 + timedelta(days=1))
    assert [p["title"][:2] for p in hooks.at("/only-a")] == ["A:"]
    assert [p["title"][:2] for p in hooks.at("/removals")] == ["A:"]
    assert sorted(p["title"][:2] for p in hooks.at("/all")) == ["A:", "B:"]
    [digest] = hooks.at("/digest")
    assert digest["title"] == "policy-watch: 2 alerts — A, B", "the digest's title stays short"
    assert (
        "A: 1 added, 1 removed, 2 changed" in digest["message"]
        and "B: 1 changed, 1 column added" in digest["message"]
    )
    assert "Snowflake Inc." in digest["message"] and "Cloudflare, Inc." in digest["message"]
    check(cfg, T0 + timedelta(days=2))
    assert len(hooks.posts) == 5, "nothing more to say on the next run"


def test_failure_threshold_and_recovery_alert_operators_once_each(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    pages.serve("/z", V1)
    extra = _notify_block("people", hooks.url("/people")) + _notify_block(
        "ops", hooks.url("/ops"), operator=True
    )
    cfg = load_config(write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))], extra=extra))
    check(cfg, T0)
    pages.serve("/z", "gone", status=404)
    for day in range(1, 6):
        check(cfg, T0 + timedelta(days=day))
        assert len(hooks.at("/ops")) == (0 if day < 3 else 1), day
    [failing] = hooks.at("/ops")
    assert failing["title"] == "Zendesk Connect: failing for 3 runs"
    pages.serve("/z", V1)
    check(cfg, T0 + timedelta(days=6))
    check(cfg, T0 + timedelta(days=7))
    assert [p["title"] for p in hooks.at("/ops")] == [
        "Zendesk Connect: failing for 3 runs",
        "Zendesk Connect: recovered",
    ]
    assert hooks.at("/people") == [], "operator alerts go to operator targets only"


def test_failures_go_to_every_target_when_none_is_an_operator(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    pages.serve("/z", V1)
    cfg = load_config(
        write_config(
            tmp_path,
            [("Z", pages.url("/z"))],
            [hooks.url("/one"), hooks.url("/two")],
            settings="failure_threshold = 2",
        )
    )
    check(cfg, T0)
    pages.serve("/z", "gone", status=404)
    for day in (1, 2, 3):
        check(cfg, T0 + timedelta(days=day))
    assert [p["title"] for p in hooks.at("/one")] == ["Z: failing for 2 runs"]
    assert [p["title"] for p in hooks.at("/two")] == ["Z: failing for 2 runs"]


def test_structure_alarm_is_sent_once(pages: PageServer, hooks: Receiver, tmp_path: Path) -> None:
    pages.serve("/z", V1)
    cfg = load_config(write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))], [hooks.url()]))
    check(cfg, T0)
    pages.serve("/z", MAINTENANCE)
    for day in (1, 2, 3):
        check(cfg, T0 + timedelta(days=day))
    assert [p["title"] for p in hooks.posts] == ["Zendesk Connect: page structure changed — check it"]
    assert rows(cfg, "select count(*) as n from changes")[0]["n"] == 0


def test_one_reminder_per_vendor_per_day_naming_entities_and_deadlines(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    pages.serve("/h", page(SAFE_ROWS, "October 1, 2026"))
    cfg = load_config(write_config(tmp_path, [("Acme", pages.url("/h"))], [hooks.url()]))
    check(cfg, datetime(2026, 11, 1, 8, tzinfo=UTC))
    first = ROW.format("New Analytics GmbH", "Analytics", "Germany")
    second = ROW.format("Other Hosting Ltd", "Hosting", "Ireland")
    pages.serve("/h", page([*SAFE_ROWS, first], "October 1, 2026"))
    check(cfg, datetime(2026, 11, 3, 8, tzinfo=UTC))  # window 1: deadline 2026-12-03
    pages.serve("/h", page([*SAFE_ROWS, first, second], "October 1, 2026"))
    check(cfg, datetime(2026, 11, 4, 8, tzinfo=UTC))  # window 2: deadline 2026-12-04
    before = len(hooks.posts)
    check(cfg, datetime(2026, 11, 27, 8, tzinfo=UTC))  # 6 and 7 days left: both due today
    check(cfg, datetime(2026, 11, 27, 9, tzinfo=UTC))
    [reminder] = hooks.posts[before:]
    assert reminder["title"] == "Acme: 6 days left to object (deadline 2026-12-03)"
    text = reminder["message"]
    assert "objection windows for Acme close soon" in text
    assert "object by 2026-12-03 (6 days left)" in text and "to New Analytics GmbH" in text
    assert "object by 2026-12-04 (7 days left)" in text and "to Other Hosting Ltd" in text
    before = len(hooks.posts)
    check(cfg, datetime(2026, 12, 2, 8, tzinfo=UTC))
    [last] = hooks.posts[before:]
    assert last["title"] == "Acme: 1 day left to object (deadline 2026-12-03)"
    assert "an objection window for Acme closes soon" in last["message"]
    assert "object by 2026-12-03 (1 day left)" in last["message"] and "2026-12-04" not in last["message"]


def test_webhook_type_fits_the_message(pages: PageServer, hooks: Receiver, tmp_path: Path) -> None:
    pages.serve("/h", page(SAFE_ROWS, "August 1, 2026"))
    cfg = load_config(
        write_config(tmp_path, [("Acme", pages.url("/h"))], [hooks.url()], settings="failure_threshold = 1")
    )
    check(cfg, T0)
    pages.serve("/h", page([*SAFE_ROWS, ROW.format("Late Co", "Hosting", "France")], "September 1, 2026"))
    check(cfg, T0 + timedelta(days=1))  # opened 2026-09-01, closed 2026-10-01: found too late
    pages.serve("/h", "gone", status=404)
    check(cfg, T0 + timedelta(days=2))
    pages.serve("/h", page([*SAFE_ROWS, ROW.format("Late Co", "Hosting", "France")], "September 1, 2026"))
    check(cfg, T0 + timedelta(days=3))
    pages.serve(
        "/h",
        page(
            [*SAFE_ROWS, ROW.format("Late Co", "Hosting", "France"), ROW.format("Next Co", "Mail", "Spain")],
            "November 6, 2026",
        ),
    )
    check(cfg, T0 + timedelta(days=4))
    got = [(p["title"].split(":")[1].strip().split(" ")[0], p["type"]) for p in hooks.posts]
    assert got == [("1", "warning"), ("failing", "failure"), ("recovered", "success"), ("1", "info")], got
    assert "DEADLINE PASSED" in hooks.posts[0]["title"]
