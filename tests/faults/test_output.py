"""Output faults: hostile page text must not mention people in chat, drive a terminal, overflow a
target's message size, widen a search, and config numbers must not break a later run."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack
from faultkit import RawServer, head
from pwtest import PageServer, cli, write_config
from test_outbox import Receiver, check, rows

from policy_watch.config import load_config

T0 = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)
PAGE = (
    "<html><body><h1>Subprocessors</h1><p>Last updated: November 2, 2026</p><table><thead><tr>"
    "<th>Entity Name</th><th>Purpose</th><th>Country</th></tr></thead><tbody>{}</tbody></table></body></html>"
)
ROW = "<tr><td>{}</td><td>{}</td><td>{}</td></tr>"
SAFE = [
    ROW.format("Amazon Web Services, Inc.", "Hosting", "United States"),
    ROW.format("Stripe, Inc.", "Payments", "United States"),
]


def page(rows_: list[str]) -> str:
    return PAGE.format("".join(rows_))


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    receiver = Receiver(reply=b"ok")
    original = (NotifySlack.webhook_url, NotifyDiscord.notify_url)
    NotifySlack.webhook_url = f"http://127.0.0.1:{receiver.port}/slack"  # the real plugins, a local endpoint
    NotifyDiscord.notify_url = f"http://127.0.0.1:{receiver.port}/discord"
    yield receiver
    NotifySlack.webhook_url, NotifyDiscord.notify_url = original
    receiver.close()


def targets(hooks: Receiver) -> list[str]:
    port = hooks.port
    return [
        f"json://127.0.0.1:{port}/json",
        f"mmost://127.0.0.1:{port}/mattermosttoken1234",
        "discord://417429632418316298/abcdefghijklmnopqrstuvwxyzABCDEF0123456789/",
        "slack://T1234ABCD/B1234ABCD/abcdefghijklmnopqrstuvwx/#privacy",
    ]


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [t for k, v in node.items() if k != "path" for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return [node] if isinstance(node, str) else []


# --- mentions on every kind of target ----------------------------------------------------------

MENTION_ROWS = [
    ROW.format("@here Acme @channel", "@everyone hosting", "@all"),
    ROW.format("Beta &lt;@123456789012345678&gt; &lt;!here&gt;", "_italic_ ~strike~ `code`", "Ireland"),
]
LIVE_MENTION = re.compile(
    r"(?<![\w\u200b\u200d])@(here|channel|everyone|all)\b|<@\d|<!(here|channel|everyone)"
)


def test_page_text_mentions_nobody_on_any_target(pages: PageServer, hooks: Receiver, tmp_path: Path) -> None:
    pages.serve("/m", page(SAFE))
    cfg = load_config(write_config(tmp_path, [("Mentions", pages.url("/m"))], targets(hooks)))
    check(cfg, T0)
    pages.serve("/m", page(SAFE + MENTION_ROWS))
    report = check(cfg, T0 + timedelta(days=1))
    assert (report.delivered, report.pending) == (4, 0), rows(cfg, "select target, last_error from outbox")
    by_path = {p["path"].split("/")[1]: p for p in hooks.posts}
    assert set(by_path) == {"json", "hooks", "discord", "slack"}, set(by_path)
    for where, post in by_path.items():
        text = "\n".join(_texts(post))
        assert "Acme" in text and "Beta" in text, (where, text[:300])
        assert not LIVE_MENTION.search(text), (where, LIVE_MENTION.search(text), text[:2000])
    discord = by_path["discord"]
    assert not discord.get("allow_mentions") and not discord.get("allowed_mentions"), discord
    slack = "\n".join(_texts(by_path["slack"]))
    for mark in ("_italic_", "~strike~", "`code`"):
        assert mark not in slack, slack


# --- terminals ---------------------------------------------------------------------------------

ESCAPES = [
    "Acme\x1b[2J\x1b[H Inc",
    "Host\x1b]0;owned\x07ing",
    "Clip\x1b]52;c;ZXZpbA==\x07board",
    "Red\x1b[31m Co",
    "CSI\x9b2J Ltd",
    "Bidi \u202eevil\u202c Ltd",
    "Bell\x07\x7f GmbH",
]
TERMINAL_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape_page(names: list[str]) -> str:
    return page(SAFE + [ROW.format(n, f"purpose {n}", "Germany") for n in names]).replace("\x00", "")


def test_escape_sequences_in_page_text_never_reach_the_terminal(pages: PageServer, tmp_path: Path) -> None:
    pages.serve("/e", page(SAFE))
    config = write_config(tmp_path, [("Escapes", pages.url("/e"))])
    assert cli(config, "run").returncode == 0
    pages.serve("/e", _escape_page(ESCAPES))
    (tmp_path / "hostile.html").write_text(_escape_page(ESCAPES))
    outputs = {
        "run": cli(config, "run"),
        "show": cli(config, "show", "Escapes"),
        "changes": cli(config, "changes"),
        "changes csv": cli(config, "changes", "--csv"),
        "who": cli(config, "who", "Co"),
        "export csv": cli(config, "export"),
        "parse": cli(config, "parse", str(tmp_path / "hostile.html")),
        "outbox": cli(config, "outbox", "--all"),
        "error": cli(config, "show", "Acme\x1b[2J\x1b]0;x\x07"),
    }
    for label, r in outputs.items():
        assert "Traceback" not in r.stderr, (label, r.stderr)
        for stream in (r.stdout, r.stderr):
            bad = TERMINAL_UNSAFE.search(stream)
            assert bad is None, (label, repr(stream[max(0, bad.start() - 40) : bad.end() + 40]))
    assert "\\x1b[2J" in outputs["show"].stdout and "\\u202e" in outputs["show"].stdout
    assert "\\x1b]52;c;ZXZpbA==\\x07" in outputs["export csv"].stdout
    assert outputs["error"].returncode != 0 and "\\x1b[2J" in outputs["error"].stderr
    shown = json.loads(cli(config, "show", "Escapes", "--json").stdout)
    entities = {e["entity"] for e in shown["entries"]}
    assert {"Acme\x1b[2J\x1b[H Inc", "CSI\x9b2J Ltd", "Clip\x1b]52;c;ZXZpbA==\x07board"} <= entities, entities
    raw_json = cli(config, "changes", "--json").stdout
    assert not TERMINAL_UNSAFE.search(raw_json) and any(
        "\x1b]52;c;" in (c["entity"] or "") + (c["new"] or "") for c in json.loads(raw_json)
    )


def test_a_hostile_location_header_does_not_reach_the_terminal(pages: PageServer, tmp_path: Path) -> None:
    hostile = "/moved\x1b]0;owned\x07\x1b[2J\x9b31m"

    def redirect(conn: socket.socket, path: str) -> None:
        conn.sendall(head(302, {"Location": "http://127.0.0.1:9" + hostile, "Content-Length": "0"}))

    server = RawServer(redirect)
    try:
        config = write_config(tmp_path, [("Redirector", server.url())])
        for r in (cli(config, "run"), cli(config, "-v", "run"), cli(config, "parse", server.url())):
            assert r.returncode != 0
            assert "Redirector" in r.stderr or "127.0.0.1" in r.stderr, r.stderr
            bad = TERMINAL_UNSAFE.search(r.stdout + r.stderr)
            assert bad is None, repr((r.stdout + r.stderr)[max(0, bad.start() - 60) : bad.end() + 20])
    finally:
        server.close()


# --- message size ------------------------------------------------------------------------------


def test_twenty_thousand_added_rows_fit_each_targets_limit(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    pages.serve("/big", page(SAFE))
    cfg = load_config(write_config(tmp_path, [("Big Vendor", pages.url("/big"))], targets(hooks)))
    check(cfg, T0)
    added = [
        ROW.format(f"Subprocessor number {i:05d} Limited", "Analytics and hosting", "Germany")
        for i in range(20_000)
    ]
    pages.serve("/big", page(SAFE + added))
    report = check(cfg, T0 + timedelta(days=1))
    assert (report.delivered, report.pending) == (4, 0), rows(cfg, "select target, last_error from outbox")
    limits = {"json": 32768, "hooks": 4000, "discord": 2000, "slack": 35000}
    by_path = {p["path"].split("/")[1]: p for p in hooks.posts}
    for where, limit in limits.items():
        post = by_path[where]
        body = max(_texts(post), key=len)
        assert len(body) <= limit, (where, len(body))
        assert "policy-watch changes --vendor 'Big Vendor'" in body, (where, body[-300:])
        assert re.search(r"[\d,]+ more changes not shown here", body), (where, body[-300:])
        assert "Subprocessor number 00000 Limited" in body, where
    assert rows(cfg, "select count(*) as n from changes")[0]["n"] == 20_000, "every change is on record"


# --- searches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["%", "_", "%%", "_%_", "\\"])
def test_who_wildcards_match_only_themselves(pages: PageServer, tmp_path: Path, pattern: str) -> None:
    pages.serve("/w", page([*SAFE, ROW.format("Fifty 50% Off Ltd", "Deals", "Spain")]))
    config = write_config(tmp_path, [("Wild", pages.url("/w"))])
    assert cli(config, "run").returncode == 0
    found = json.loads(cli(config, "who", pattern, "--json").stdout)
    expected = ["Fifty 50% Off Ltd"] if pattern == "%" else []
    assert [r["entity"] for r in found] == expected, found
    assert [r["entity"] for r in json.loads(cli(config, "who", "50%", "--json").stdout)] == [
        "Fifty 50% Off Ltd"
    ]


# --- config numbers that pass a type check but break later ------------------------------------


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("objection_days = 1000000000", "settings.objection_days"),
        ("timeout = inf", "settings.timeout"),
        ("timeout = nan", "settings.timeout"),
        ("alert_retry_minutes = 100000000000", "settings.alert_retry_minutes"),
        ("reminder_days = [7, 1000000000]", "settings.reminder_days"),
        ("max_bytes = 0", "settings.max_bytes"),
    ],
)
def test_config_numbers_that_would_break_later_are_refused_at_load(
    pages: PageServer, tmp_path: Path, line: str, key: str
) -> None:
    pages.serve("/c", page(SAFE))
    config = write_config(tmp_path, [("Numbers", pages.url("/c"))])
    config.write_text(config.read_text().replace("alert_retry_minutes = 0", line))
    r = cli(config, "run")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert f"{config}: {key}: must be between" in r.stderr, r.stderr
    assert not (tmp_path / "pw.db").exists(), "nothing is written"
