"""Delivery through the outbox: never lost, each target once, retried with backoff, secrets never shown."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pwtest import ROOT, ZENDESK, PageServer, SMTPSink, cli, free_port, write_config

from policy_watch import notify, pipeline
from policy_watch.config import Config, load_config
from policy_watch.fetch import Fetcher
from policy_watch.store import Alert, OutboxRow, OutboxStatus, Store

V1 = (ZENDESK / "v1.html").read_bytes()
V2 = (ZENDESK / "v2.html").read_bytes()
V3 = (ZENDESK / "v3.html").read_bytes()
V4 = (ZENDESK / "v4.html").read_bytes()
T0 = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)


class Receiver:
    """A real HTTP receiver for webhooks (apprise json://) and Slack (answers "ok").

    With ``hold`` set, it records the first POST and then keeps the connection open without
    answering until ``release`` is set: the sender is caught in the middle of a send.
    """

    def __init__(self, reply: bytes = b"{}") -> None:
        self.posts: list[dict[str, Any]] = []
        self.reply = reply
        self.status = 200
        self.hold = threading.Event()
        self.release = threading.Event()
        self.held = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    data = json.loads(raw)
                except json.JSONDecodeError:
                    data = {"raw": raw.decode(errors="replace")}
                outer.posts.append({"path": self.path, **data})
                if outer.hold.is_set() and not outer.held.is_set():
                    outer.held.set()
                    outer.release.wait(30)
                try:
                    self.send_response(outer.status)
                    self.send_header("Content-Length", str(len(outer.reply)))
                    self.end_headers()
                    self.wfile.write(outer.reply)
                except OSError:
                    pass  # the sender is gone

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["path"] == path]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@contextmanager
def opened(cfg: Config) -> Iterator[Store]:
    store = Store.open(cfg.settings.database)
    try:
        yield store
    finally:
        store.close()


def check(cfg: Config, at: datetime) -> pipeline.RunReport:
    """One in-process run of every vendor, as if it were ``at``."""
    with opened(cfg) as store, Fetcher(pipeline.fetch_options(cfg)) as f:
        return pipeline.run_check(cfg, store, f, now=lambda: at)


def rows(cfg: Config, sql: str, *params: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(cfg.settings.database)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


# --- SMTP down, then up ----------------------------------------------------------------------------


def test_smtp_down_then_up_delivers_exactly_once_on_the_next_run(pages: PageServer, tmp_path: Path) -> None:
    port = free_port()
    sink = SMTPSink(port)  # not started: nothing listens on the port yet
    pages.serve("/z", V1)
    cfg = load_config(write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))], [sink.url()]))
    check(cfg, T0)
    pages.serve("/z", V2)
    first = check(cfg, T0 + timedelta(hours=1))
    assert (first.delivered, first.pending) == (0, 1)
    [row] = rows(cfg, "select * from outbox")
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_error"]

    shown = cli(cfg.path, "outbox", "--json")
    assert shown.returncode == 0, shown.stderr
    [listed] = json.loads(shown.stdout)
    assert listed["status"] == "pending" and listed["last_error"] == row["last_error"]

    sink.start()
    try:
        second = check(cfg, T0 + timedelta(hours=2))
        assert (second.delivered, second.pending) == (1, 0)
        assert len(sink.messages) == 1
        assert (
            sink.messages[0]["Subject"]
            == "Zendesk Connect: 1 added, 1 removed, 2 changed — object by 2026-12-02"
        )
        check(cfg, T0 + timedelta(hours=3))
        assert len(sink.messages) == 1, "a delivered alert must not be sent again"
    finally:
        sink.stop()
    assert json.loads(cli(cfg.path, "outbox", "--json").stdout) == []


def test_failed_target_is_retried_with_backoff_and_skipped_for_the_rest_of_the_run(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    pages.serve("/a", V1)
    pages.serve("/b", V3)
    cfg_path = write_config(
        tmp_path,
        [("A", pages.url("/a")), ("B", pages.url("/b"))],
        [hooks.url()],
        settings="alert_retry_minutes = 10",
    )
    cfg_path.write_text(cfg_path.read_text().replace("alert_retry_minutes = 0\n", ""))
    cfg = load_config(cfg_path)
    assert cfg.settings.alert_retry_minutes == 10
    check(cfg, T0)
    pages.serve("/a", V2)
    pages.serve("/b", V4)
    hooks.status = 500
    check(cfg, T0 + timedelta(minutes=1))
    assert len(hooks.posts) == 1, "after one failure the target is not tried again in the same run"
    attempts = sorted(r["attempts"] for r in rows(cfg, "select attempts from outbox"))
    assert attempts == [0, 1]

    failed = hooks.posts[0]["title"][:2]
    untried = ({"A:", "B:"} - {failed}).pop()
    hooks.status = 200
    check(cfg, T0 + timedelta(minutes=5))  # the failed alert waits 10 minutes; the untried one goes now
    assert [p["title"][:2] for p in hooks.posts[1:]] == [untried]
    check(cfg, T0 + timedelta(minutes=12))
    assert sorted(p["title"][:2] for p in hooks.posts[1:]) == ["A:", "B:"]
    assert {r["status"] for r in rows(cfg, "select status from outbox")} == {"sent"}


def test_each_target_gets_each_alert_once_when_another_target_fails(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    pages.serve("/z", V1)
    dead = f"json://127.0.0.1:{free_port()}/dead"
    cfg = load_config(
        write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))], [hooks.url("/ok"), dead])
    )
    check(cfg, T0)
    pages.serve("/z", V2)
    for hour in (1, 2, 3):
        check(cfg, T0 + timedelta(hours=hour))
    assert len(hooks.at("/ok")) == 1
    [failing] = rows(cfg, "select * from outbox where target = 'target2'")
    assert failing["status"] == "pending" and failing["attempts"] == 3


def test_an_alert_queued_twice_for_a_target_is_sent_once(hooks: Receiver, tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, [], [hooks.url()]))
    with opened(cfg) as store:
        alert = Alert("target1", "V", "changes", "changes:1", "V: 1 added", "md", "<p>h</p>", "text")
        store.outbox.enqueue([alert], "run1", T0)
        store.outbox.enqueue([alert], "run2", T0)
        assert pipeline.deliver(cfg, store, lambda: T0) == (1, 0)
        assert pipeline.deliver(cfg, store, lambda: T0) == (0, 0)
    assert len(hooks.posts) == 1


def test_outbox_rows_move_through_typed_statuses(tmp_path: Path) -> None:
    """The store's outbox interface: held and pending rows in, each transition kept on the row."""
    cfg = load_config(write_config(tmp_path, [], []))
    held = Alert("digest", "V", "changes", "k1", "T1", "md", "<p>h</p>", "text", held=True, level="warning")
    with opened(cfg) as store:
        store.outbox.enqueue([held, Alert("t", "V", "changes", "k2", "T2", "md", "html", "text")], "run1", T0)
        [row] = store.outbox.rows((OutboxStatus.HELD,))
        assert isinstance(row, OutboxRow) and row.status is OutboxStatus.HELD and row.level == "warning"
        store.outbox.merged([row.id])
        [row] = store.outbox.rows()
        assert (row.target, row.status, row.attempts) == ("t", OutboxStatus.PENDING, 0)
        assert store.outbox.waiting() == 1
        store.outbox.sending(row.id, T0)
        assert store.outbox.rows((OutboxStatus.SENDING,))[0].sending_at == T0.isoformat()
        store.outbox.failed(row.id, 1, "refused", T0 + timedelta(minutes=5))
        [row] = store.outbox.rows()
        assert (row.attempts, row.last_error, row.next_attempt_at) == (
            1,
            "refused",
            (T0 + timedelta(minutes=5)).isoformat(),
        )
        store.outbox.sent(row.id, T0 + timedelta(minutes=6), 2)
        assert store.outbox.waiting() == 0
    [merged, sent] = rows(cfg, "select status, attempts, last_error from outbox order by id")
    assert merged["status"] == "merged"
    assert sent == {"status": "sent", "attempts": 2, "last_error": None}


# --- a process killed in the middle of sending ---------------------------------------------------


def test_killed_mid_send_next_run_delivers_everything_and_marks_only_the_one_in_flight(
    pages: PageServer, tmp_path: Path
) -> None:
    hooks = Receiver()
    try:
        pages.serve("/a", V1)
        pages.serve("/b", V3)
        cfg = write_config(
            tmp_path,
            [("Vendor A", pages.url("/a")), ("Vendor B", pages.url("/b"))],
            [hooks.url("/one"), hooks.url("/two")],
        )
        assert cli(cfg, "run").returncode == 0
        pages.serve("/a", V2)
        pages.serve("/b", V4)
        hooks.hold.set()
        proc = subprocess.Popen(
            [sys.executable, "-m", "policy_watch", "--config", str(cfg), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert hooks.held.wait(60), "the first alert never arrived"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        hooks.release.set()
        assert len(hooks.posts) == 1
        in_flight = hooks.posts[0]
        assert not in_flight["title"].startswith("[possible repeat]")

        hooks.hold.clear()
        done = cli(cfg, "run")
        assert done.returncode == 0, done.stderr
        assert "alerts sent 4, pending 0" in done.stdout
        later = hooks.posts[1:]
        assert len(later) == 4  # 2 vendors x 2 targets, the one in flight included
        repeats = [p for p in later if p["title"].startswith("[possible repeat] ")]
        assert len(repeats) == 1
        assert repeats[0]["path"] == in_flight["path"]
        assert repeats[0]["title"] == "[possible repeat] " + in_flight["title"]
        assert "may be a repeat" in repeats[0]["message"]
        keys = sorted((p["path"], p["title"].removeprefix("[possible repeat] ")) for p in later)
        assert len(set(keys)) == 4, "every alert reaches every target"
        assert cli(cfg, "run").returncode == 0
        assert len(hooks.posts) == 5, "nothing is sent twice after that"
    finally:
        hooks.close()


# --- secrets ---------------------------------------------------------------------------------------

SECRET = "s3cr3t-Tok3n-4f9a2c7e"
PASSWORD = "pa55-Word-77c1d0"


def test_secret_tokens_never_appear_in_output_errors_logs_or_the_database(
    pages: PageServer, tmp_path: Path
) -> None:
    dead = free_port()
    smtp_port = free_port()
    pages.serve("/z", V1)
    cfg = write_config(
        tmp_path,
        [("Zendesk Connect", pages.url("/z"))],
        [
            f"json://bot:${{PW_PASSWORD}}@127.0.0.1:{dead}/hooks/${{PW_SECRET}}?+X-Api-Key=${{PW_SECRET}}",
            f"mailtos://alerts%40example.com:${{PW_PASSWORD}}@127.0.0.1:{smtp_port}?to=privacy@example.com",
        ],
    )
    env = {"PW_SECRET": SECRET, "PW_PASSWORD": PASSWORD}
    outputs = [cli(cfg, "-v", "run", env=env)]
    pages.serve("/z", V2)
    outputs += [cli(cfg, "-v", "run", env=env), cli(cfg, "-v", "run", "--json", env=env)]
    outputs += [cli(cfg, "outbox", env=env), cli(cfg, "outbox", "--json", env=env)]
    outputs += [cli(cfg, "-v", "notify-test", env=env)]
    test = outputs[-1]
    assert test.returncode == 1
    assert "target1 json://bot:****@127.0.0.1" in test.stdout and "target2 mailtos://" in test.stdout
    assert test.stdout.count("FAILED") == 2
    errors = [r["last_error"] for r in rows(load_config_env(cfg, env), "select last_error from outbox")]
    assert len(errors) == 2 and all(errors)
    for out in outputs:
        for secret in (SECRET, PASSWORD):
            assert secret not in out.stdout and secret not in out.stderr
    db = tmp_path / "pw.db"
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("pw.db"))
    assert db.exists()
    assert SECRET.encode() not in blob and PASSWORD.encode() not in blob


def load_config_env(path: Path, env: dict[str, str]) -> Config:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return load_config(path)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_notify_test_prints_each_targets_result(hooks: Receiver, smtp: SMTPSink, tmp_path: Path) -> None:
    dead = f"json://127.0.0.1:{free_port()}/nobody"
    cfg = write_config(tmp_path, [], [hooks.url(), smtp.url(), dead])
    out = cli(cfg, "notify-test")
    lines = out.stdout.splitlines()
    assert out.returncode == 1
    assert lines[0].startswith("target1 json://127.0.0.1") and lines[0].endswith(": ok")
    assert lines[1].startswith("target2 mailto://127.0.0.1") and lines[1].endswith(": ok")
    assert lines[2].startswith("target3 json://127.0.0.1") and "FAILED" in lines[2]
    assert len(hooks.posts) == 1 and len(smtp.messages) == 1
    assert smtp.messages[0]["Subject"] == "policy-watch test alert"


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        (
            "slack://T1234ABCD/B1234ABCD/abcdefghijklmnopqrstuvwx/#privacy",
            "slack://T...D/B...D/a...x/",
            ["T1234ABCD", "B1234ABCD", "abcdefghijklmnopqrstuvwx"],
        ),
        (
            "json://bot:pa55-Word-77@127.0.0.1:8/hooks/s3cr3tPathTok?+X-Api-Key=k3y-Value-9",
            "json://bot:****@127.0.0.1:8/hooks/s...k",
            ["pa55-Word-77", "s3cr3tPathTok", "k3y-Value-9"],
        ),
        (
            "mailtos://me:app-pw-123@smtp.example.com?to=a@example.com",
            "mailtos://me:****@smtp.example.com",
            ["app-pw-123"],
        ),
    ],
)
def test_redacted_urls_and_scrubbed_errors_hide_tokens(url: str, shown: str, hidden: list[str]) -> None:
    printable = notify.redact(url)
    assert printable.startswith(shown)
    error = notify.scrub(f"POST to {url} failed; token {hidden[-1]} rejected", url)
    for secret in hidden:
        assert secret not in printable and secret not in error


def _mail_example_from_config_toml() -> str:
    lines = [line for line in (ROOT / "config.toml").read_text().splitlines() if "mailto://" in line]
    assert lines, "config.toml shows no mailto:// example"
    return lines[0].split('"')[1]


def test_the_config_examples_email_form_works_with_a_relay_without_login(
    smtp: SMTPSink, tmp_path: Path
) -> None:
    example = _mail_example_from_config_toml()
    host = example.split("://", 1)[1].split("?", 1)[0]
    url = example.replace(host, f"127.0.0.1:{smtp.port}")
    config = write_config(tmp_path, [], [url])
    r = cli(config, "notify-test")
    assert r.returncode == 0, r.stdout + r.stderr
    [mail] = smtp.messages
    assert mail["Subject"] == "policy-watch test alert" and mail["To"] == "privacy@example.com"


def test_a_delivery_failure_says_apprises_reason_everywhere(
    pages: PageServer, smtp: SMTPSink, tmp_path: Path
) -> None:
    password = "Hunter2SecretPassword"
    url = f"mailto://alerts:${{PW_SMTP_PASSWORD}}@127.0.0.1:{smtp.port}?from=alerts@example.com&to=privacy@example.com"
    pages.serve("/z", V1)
    config = write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))], [url])
    env = {"PW_SMTP_PASSWORD": password}
    test = cli(config, "notify-test", env=env)
    assert test.returncode == 1
    assert "SMTP AUTH extension not supported by server" in test.stdout, test.stdout
    assert cli(config, "run", env=env).returncode == 0
    pages.serve("/z", V2)
    run = cli(config, "run", env=env)
    assert "SMTP AUTH extension not supported by server" in run.stderr, run.stderr  # the log line
    outbox = json.loads(cli(config, "outbox", "--json", env=env).stdout)
    assert [r["status"] for r in outbox] == ["pending"]
    assert "SMTP AUTH extension not supported by server" in outbox[0]["last_error"]
    table = cli(config, "outbox", env=env).stdout  # the table shows the error whole, wrapped in its column
    last_column = " ".join(line.split("│")[-2].strip() for line in table.splitlines() if line.count("│") > 2)
    assert "SMTP AUTH extension not supported by server" in last_column, table
    for out in (test.stdout, test.stderr, run.stdout, run.stderr, json.dumps(outbox)):
        assert password not in out
    assert smtp.messages == []
