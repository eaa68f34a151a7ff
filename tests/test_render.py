"""Alert text: titles, per-change deadlines, escaping of hostile page text for Slack and email."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date

import apprise
import pytest
from apprise.plugins.slack import NotifySlack
from pwtest import ZENDESK
from test_outbox import Receiver

from policy_watch import notify, render
from policy_watch.config import NotifyTarget
from policy_watch.models import Change, ChangeKind, ObjectionWindow, WindowRule
from policy_watch.policy import Suspicion

DETECTED = date(2026, 11, 5)
WINDOW = ObjectionWindow(date(2026, 11, 2), date(2026, 12, 2), WindowRule.DECLARED)
HOSTILE = [
    "<!channel> Acme & Sons <@U024BE7LH>",
    "<!here> <!everyone> <!subteam^S012345|ops>",
    "<https://evil.example/login|Click here to keep access>",
    "[verify your account](https://evil.example/phish)",
    "!channel> and &lt;!here&gt; and \\<!channel\\>",
    "**bold** _it_ `code` ~strike~ # heading",
    '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "\u202eevil\u202c zero\u200bwidth",
]
MENTIONS = ["<!channel", "<!here", "<!everyone", "<!subteam", "<@U", "<https://evil", "<http"]


def v1_to_v2() -> list[Change]:
    [first, *_] = json.loads((ZENDESK / "transitions.json").read_text())
    return [
        Change(ChangeKind(c["kind"]), c["section"], c["entity"], c["field"], c["old"], c["new"])
        for c in first["changes"]
    ]


def hostile_changes() -> list[Change]:
    out = [Change(ChangeKind.ADDED, "Infra <b>", name) for name in HOSTILE]
    out.append(Change(ChangeKind.CHANGED, "Infra", "Acme", "country", "<!here>", HOSTILE[2]))
    return out


def test_title_counts_every_kind_and_names_the_deadline() -> None:
    msg = render.change_message("Zendesk Connect", "https://example.com/p", v1_to_v2(), WINDOW, DETECTED)
    assert msg.title == "Zendesk Connect: 1 added, 1 removed, 2 changed — object by 2026-12-02"


def test_each_change_shows_entity_section_old_new_and_its_window() -> None:
    msg = render.change_message(
        "Zendesk Connect",
        "https://example.com/p",
        v1_to_v2(),
        WINDOW,
        DETECTED,
        declared=date(2026, 11, 2),
        window_id=7,
    )
    text = msg.text
    assert "Page: https://example.com/p" in text
    assert "Object by 2026-12-02 (27 days left)" in text
    assert "opened 2026-11-02, the update date the page declares; detected 2026-11-05" in text
    opening, other = text.split(
        "Changes that open the objection window (deadline 2026-12-02 · 27 days left):\n"
    )[1].split("\n\nOther changes (they open no objection window):\n")
    assert opening.startswith(
        "- Added: Snowflake Inc. (section Service Subprocessors)\n- Changed purpose of Mailup"
    )
    assert (
        "- Changed country of Zendesk, Inc. (section Zendesk Group Subprocessors): Philippines → Philippines,"
        " Malaysia"
    ) in opening
    assert other.startswith("- Removed: Pendo.io, Inc. (section Service Subprocessors)\n\nRecord a decision")
    assert "policy-watch ack|object|accept 7" in text
    for body in (msg.markdown, msg.html):
        assert body.count("deadline 2026-12-02 · 27 days left") == 1
        assert "Snowflake Inc." in body and "Pendo.io, Inc." in body


def test_what_opens_a_window_comes_first_and_removals_follow_without_filler() -> None:
    removed = [Change(ChangeKind.REMOVED, "S", f"Gone {i}") for i in range(3)]
    added = [
        Change(ChangeKind.ADDED, "S", "New Co"),
        Change(ChangeKind.CHANGED, "S", "Old Co", "country", "US", "DE"),
    ]
    msg = render.change_message("Z", "https://e.example", removed + added, WINDOW, DETECTED)
    for body, bullet in ((msg.text, "- "), (msg.markdown, "• ")):
        lines = body.splitlines()
        items = [line for line in lines if line.startswith(bullet)]
        assert len(items) == 5 and "New Co" in items[0] and "Old Co" in items[1], items
        assert all("Gone" in line for line in items[2:])
        assert "opens no objection window" not in body and "no objection window" in body
        first_gone = lines.index(items[2])
        assert lines[first_gone + 1 : first_gone + 3] == items[3:], "one line per removal, no filler"
    assert msg.html.index("New Co") < msg.html.index("Gone 0")


def test_configured_window_kinds_decide_which_changes_show_a_deadline() -> None:
    msg = render.change_message(
        "Z", "https://example.com/p", v1_to_v2(), WINDOW, DETECTED, window_kinds=["added"]
    )
    opening = msg.text.split("Changes that open the objection window")[1].split("Other changes")[0]
    assert [line for line in opening.splitlines() if line.startswith("- ")] == [
        "- Added: Snowflake Inc. (section Service Subprocessors)"
    ]
    assert msg.text.count("deadline 2026-12-02") == 1


def test_detection_rule_says_why_the_page_date_was_not_used() -> None:
    window = ObjectionWindow(date(2026, 11, 20), date(2026, 12, 20), WindowRule.DETECTED)
    msg = render.change_message(
        "Z", "https://e.example", v1_to_v2()[:1], window, date(2026, 11, 20), declared=date(2026, 11, 2)
    )
    assert "the date policy-watch detected the change" in msg.text
    assert "the page's own date, 2026-11-02, did not move forward" in msg.text


def test_a_deadline_passed_at_detection_is_flagged_first_and_in_the_title() -> None:
    msg = render.change_message(
        "Zendesk Connect", "https://e.example", v1_to_v2(), WINDOW, date(2026, 12, 10)
    )
    assert msg.title == "Zendesk Connect: 1 added, 1 removed, 2 changed — DEADLINE PASSED 2026-12-02"
    assert msg.text.startswith("!!! DEADLINE ALREADY PASSED !!!")
    assert "closed on 2026-12-02, 8 days before this change was detected on 2026-12-10" in msg.text
    assert msg.markdown.startswith("🚨 **DEADLINE ALREADY PASSED**")
    assert msg.html.startswith('<p style="color:#b00020')
    assert "deadline passed 8 days ago" in msg.text


def test_no_window_no_deadline() -> None:
    removed = [c for c in v1_to_v2() if c.kind is ChangeKind.REMOVED]
    msg = render.change_message("Z", "https://e.example", removed, None, DETECTED)
    assert msg.title == "Z: 1 removed"
    assert "These changes open no objection window." in msg.text


def test_html_escapes_every_hostile_value() -> None:
    msg = render.change_message(
        "Vendor <i>x</i>", "https://e.example/?a=1&b=<2>", hostile_changes(), WINDOW, DETECTED
    )
    assert (
        "<script" not in msg.html and "<img" not in msg.html and "<!" not in msg.html and "<@" not in msg.html
    )
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in msg.html
    assert "&lt;!channel&gt; Acme &amp; Sons &lt;@U024BE7LH&gt;" in msg.html
    assert "<b>Vendor &lt;i&gt;x&lt;/i&gt;</b>" in msg.html
    assert 'href="https://e.example/?a=1&amp;b=&lt;2&gt;"' in msg.html
    assert "<i>section</i> Infra &lt;b&gt;" in msg.html
    assert "\u202e" not in msg.html and "\u200b" not in msg.text


def test_markdown_neutralises_mentions_links_and_markup() -> None:
    md = render.change_message("Zendesk", "https://e.example", hostile_changes(), WINDOW, DETECTED).markdown
    for bad in [*MENTIONS, "@here", "@U024"]:
        assert bad not in md
    assert not re.search(r"(?<!\\)[\[\]<>]", md), "no unescaped link or mention brackets"
    assert "\\*\\*bold\\*\\*" in md
    assert "‹!\u200bchannel› Acme & Sons ‹@\u200bU024BE7LH›" in md


@pytest.mark.parametrize("value", HOSTILE)
def test_slack_dialect_conversion_of_each_hostile_value_forms_no_mention_or_link(value: str) -> None:
    plugin = NotifySlack(token_a="T1234ABCD", token_b="B1234ABCD", token_c="a" * 24)
    for md in (render.slack_safe(value), f"**Added**: {render.slack_safe(value)} (_section_ S)"):
        out = plugin.dialect_convert(md, apprise.NotifyFormat.MARKDOWN)
        for bad in MENTIONS:
            assert bad not in out, (value, out)
        assert "<" not in out.replace("&lt;", "")
        assert "&amp;amp;" not in out


@pytest.fixture
def slack() -> Iterator[Receiver]:
    receiver = Receiver(reply=b"ok")
    original = NotifySlack.webhook_url
    NotifySlack.webhook_url = (
        f"http://127.0.0.1:{receiver.port}/services"  # the real plugin, a local endpoint
    )
    yield receiver
    NotifySlack.webhook_url = original
    receiver.close()


SLACK_URLS = {
    "mrkdwn": "slack://T1234ABCD/B1234ABCD/abcdefghijklmnopqrstuvwx/#privacy",
    "blocks": "slack://T1234ABCD/B1234ABCD/abcdefghijklmnopqrstuvwx/#privacy?blocks=yes",
}


@pytest.mark.parametrize("mode", sorted(SLACK_URLS))
def test_final_slack_payload_from_apprise_has_no_live_mention_or_link(slack: Receiver, mode: str) -> None:
    msg = render.change_message(
        "Zendesk <!channel>", "https://e.example/sub", hostile_changes(), WINDOW, DETECTED
    )
    target = NotifyTarget(url=SLACK_URLS[mode], name="slack")
    result = notify.send(target, msg)
    assert result.ok, result.error
    [post] = slack.posts
    assert post["path"] == "/services/T1234ABCD/B1234ABCD/abcdefghijklmnopqrstuvwx"
    payload = json.dumps(post, ensure_ascii=False)
    for bad in MENTIONS:
        assert bad not in payload, bad
    texts = _slack_texts(post)
    joined = "\n".join(texts)
    assert "Acme &amp; Sons" in joined and "&amp;amp;" not in joined
    assert "Object by 2026-12-02" in joined
    assert "<https://e.example/sub" not in joined or "|" not in joined.split("<https://e.example/sub")[1][:1]
    if mode == "mrkdwn":
        assert post["mrkdwn"] is True
        assert post["attachments"][0]["text"].startswith("*Zendesk ‹!\u200bchannel›* changed")


def test_slack_legacy_passthrough_cannot_recreate_mentions(slack: Receiver) -> None:
    """apprise turns "!channel>" back into <!channel> when no body format is declared: still nothing forms."""
    md = render.change_message("Zendesk", "https://e.example", hostile_changes(), WINDOW, DETECTED).markdown
    a = apprise.Apprise()
    a.add(SLACK_URLS["mrkdwn"])
    assert a.notify(body=md, title="t")
    payload = json.dumps(slack.posts[0], ensure_ascii=False)
    for bad in MENTIONS:
        assert bad not in payload, bad


def _slack_texts(post: dict[str, object]) -> list[str]:
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("text", "title") and isinstance(v, str):
                    out.append(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(post)
    return out


def test_clean_drops_control_and_bidi_characters_and_caps_length() -> None:
    assert render.clean("a\u202eb\x00c\u200b d\n\te") == "abc d e"
    long = render.clean("x" * 600)
    assert len(long) == render.MAX_VALUE and long.endswith("…")


def test_digest_combines_messages_and_a_single_one_passes_through() -> None:
    a = render.change_message("A", "https://a.example", v1_to_v2()[:1], WINDOW, DETECTED)
    b = render.notice_message("B: failing for 3 runs", ["Last error: <!channel> 500"])
    assert render.digest_message([a]) == a
    d = render.digest_message([a, b], ["A", "B"])
    assert d.title == "policy-watch: 2 alerts — A, B"
    assert "A: 1 changed — object by 2026-12-02" in d.text and "B: failing for 3 runs" in d.text
    assert d.text.count("———") == 1 and "A changed its subprocessor list" in d.text
    assert "<h3>B: failing for 3 runs</h3>" in d.html and "&lt;!channel&gt;" in d.html
    assert "<!channel" not in d.markdown


def test_possible_repeat_marks_every_format_once() -> None:
    msg = render.notice_message("Z: recovered", ["ok"])
    marked = render.possible_repeat(msg)
    assert marked.title == "[possible repeat] Z: recovered"
    assert (
        "may be a repeat" in marked.text
        and "may be a repeat" in marked.html
        and "may be a repeat" in marked.markdown
    )
    assert render.possible_repeat(marked) == marked


def test_plain_text_keeps_names_readable_but_forms_no_mention_or_tag() -> None:
    msg = render.change_message("Zendesk", "https://e.example", hostile_changes(), WINDOW, DETECTED)
    for bad in [*MENTIONS, "<script", "<img", "\u202e"]:
        assert bad not in msg.text
    assert "Added: ‹!channel› Acme & Sons ‹@\u200dU024BE7LH› (section Infra ‹b›)" in msg.text
    notice = render.notice_message("Z: failing", ["Last error: <!here> 500"])
    assert notice.text == "Last error: ‹!here› 500"


def test_digest_title_stays_short_however_many_vendors() -> None:
    names = [f"Vendor number {i} with a long legal name, Inc." for i in range(40)]
    msgs = [render.change_message(n, "https://e.example", v1_to_v2(), WINDOW, DETECTED) for n in names]
    d = render.digest_message(msgs, names)
    assert d.title.startswith("policy-watch: 40 alerts — Vendor number 0") and d.title.endswith("and 37 more")
    assert len(d.title) <= 200
    late = render.change_message("Late", "https://e.example", v1_to_v2(), WINDOW, date(2026, 12, 10))
    alarm = render.notice_message("X: failing", ["down"], level=render.FAILURE)
    assert render.digest_message([msgs[0], late]).level == render.WARNING
    assert render.digest_message([late, alarm, msgs[0]]).level == render.FAILURE


def test_section_renamed_from_no_heading_reads_as_english() -> None:
    c = Change(ChangeKind.CHANGED, "", "", "section", "", "Infrastructure")
    assert render.describe(c) == "Section renamed: (no heading) → Infrastructure"


def test_slack_emphasis_strike_and_code_from_page_text_do_not_format() -> None:
    plugin = NotifySlack(token_a="T1234ABCD", token_b="B1234ABCD", token_c="a" * 24)
    value = "_italic_ ~strike~ `code` ```block``` *bold*"
    out = plugin.dialect_convert(render.slack_safe(value), apprise.NotifyFormat.MARKDOWN)
    for mark in ("_", "~", "`"):
        assert mark not in out, out
    assert not re.search(r"(?<!\\)\*", out), out
    assert "italic" in out and "strike" in out and "code" in out


@pytest.mark.parametrize("mention", ["@here", "@channel", "@everyone", "@all", "@U024BE7LH", "@1234567890"])
def test_plain_text_forms_no_at_mention(mention: str) -> None:
    msg = render.change_message(
        "Z", "https://e.example", [Change(ChangeKind.ADDED, "S", f"Acme {mention} Ltd")], WINDOW, DETECTED
    )
    for body in (msg.text, msg.markdown):
        assert mention not in body, body
        assert not re.search(r"@\w", body), body
    assert f"Acme @\u200d{mention[1:]} Ltd" in msg.text


def test_fit_cuts_at_a_change_and_says_how_many_are_left_out() -> None:
    changes = [Change(ChangeKind.ADDED, "S", f"Entity {i:05d}") for i in range(20_000)]
    msg = render.change_message("Z", "https://e.example", changes, WINDOW, DETECTED)
    more = "policy-watch changes --vendor Z"
    for body, bullet, is_html in (
        (msg.text, "- ", False),
        (msg.markdown, "• ", False),
        (msg.html, "<li>", True),
    ):
        short = render.fit(body, 2000, more, is_html=is_html)
        assert len(short) <= 2000
        shown = short.count(bullet)
        assert shown > 5
        assert f"{20_000 - shown:,} more changes not shown here" in short and more in short
        assert f"Entity {shown - 1:05d}" in short and f"Entity {shown:05d}" not in short
    assert render.fit(msg.text, len(msg.text), more) == msg.text
    cut_html = render.fit(msg.html, 40_000, more, is_html=True)
    assert cut_html.count("<ul>") == cut_html.count("</ul>") and cut_html.count("<li>") == cut_html.count(
        "</li>"
    )


def test_for_terminal_escapes_controls_and_bidi_but_keeps_text() -> None:
    hostile = "Acme\x1b[2J\x1b]0;owned\x07\x1b]52;c;ZXZpbA==\x07\x9b31m\u202eevil\x7f\nnext\tcol"
    safe = render.for_terminal(hostile)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", safe)
    assert safe == "Acme\\x1b[2J\\x1b]0;owned\\x07\\x1b]52;c;ZXZpbA==\\x07\\x9b31m\\u202eevil\\x7f\nnext\tcol"
    assert render.for_terminal("München — Zürich") == "München — Zürich"


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_could_start_a_formula_are_prefixed(value: str) -> None:
    assert render.csv_cell(value).startswith("'")
    assert render.csv_cell("Acme = Inc.") == "Acme = Inc."


def test_held_reading_wording_names_the_reason() -> None:
    lost, unreadable = Suspicion(lost=5, of=8), Suspicion(unreadable="no subprocessor list found")
    assert render.held_reason(lost) == "5 of 8 entities disappeared at once"
    assert render.held_reason(unreadable) == "no subprocessor list found"
    assert render.held_error("Acme", lost) == (
        "Acme: page structure changed (5 of 8 entities disappeared at once); last good snapshot kept as baseline"
    )
    assert render.reread_kept("Acme", 8, 3, lost).endswith("read only 3 entries from the page it came from")
    assert "(no subprocessor list found)" in render.reread_kept("Acme", 8, 0, unreadable)


def test_structure_alarm_says_what_to_do_and_keeps_page_text_inert() -> None:
    msg = render.structure_alarm(
        "<!channel> Acme", "https://acme.example/subprocessors", Suspicion(lost=8, of=8), 0
    )
    assert msg.title.endswith("page structure changed — check it")
    assert "8 of 8 entities disappeared at once" in msg.text
    assert "policy-watch accept" in msg.text
    assert "https://acme.example/subprocessors" in msg.text
    assert "<!channel>" not in msg.markdown and "<!channel>" not in msg.html
