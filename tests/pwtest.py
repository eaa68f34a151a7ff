"""Real local parts for tests: an HTTP server with pages that change, an SMTP server, a webhook receiver."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
ZENDESK = FIXTURES / "zendesk"


FIXTURE_DECLARED = "November 2 2026"  # the "Last Modified" date of zendesk/v2..v4.html


def zendesk_page(version: str, declared: date | None = None) -> bytes:
    """A Zendesk fixture page; with ``declared``, its "Last Modified" date moved there, so tests that
    run the real clock (through the CLI) get the same window whatever day they run on."""
    body = (ZENDESK / f"{version}.html").read_bytes()
    if declared is not None:
        body = body.replace(
            FIXTURE_DECLARED.encode(), f"{declared:%B} {declared.day} {declared.year}".encode()
        )
    return body


def recent(days_ago: int = 3) -> date:
    return datetime.now(UTC).date() - timedelta(days=days_ago)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    delay: float = 0.0  # seconds before answering: a slow server
    before: Callable[[], None] | None = None  # called before answering: a test holds the answer back


class PageServer:
    """A real HTTP server on 127.0.0.1 whose pages a test can change between runs; also a webhook receiver."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.peers: list[int] = []  # client port of each GET: one port per reused connection
        self.posts: list[dict[str, Any]] = []
        self.post_status = 200
        self.arrived = threading.Condition()  # notified on each request recorded
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY the body waited for the
            # client's delayed ACK of the headers, 40 ms a response, as no production server does.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                with outer.arrived:
                    outer.requests.append(("GET", self.path, dict(self.headers)))
                    outer.peers.append(self.client_address[1])
                    outer.arrived.notify_all()
                route = outer.routes.get(self.path)
                if route is None:
                    self._reply(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.before is not None:
                    route.before()
                time.sleep(route.delay)
                etag = route.headers.get("ETag")
                if etag and self.headers.get("If-None-Match") == etag:
                    self._reply(304, b"", {"ETag": etag})
                    return
                self._reply(route.status, route.body, route.headers)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                with outer.arrived:
                    outer.requests.append(("POST", self.path, dict(self.headers)))
                    if outer.post_status == 200:
                        try:
                            outer.posts.append({"path": self.path, **json.loads(raw)})
                        except json.JSONDecodeError:
                            outer.posts.append({"path": self.path, "raw": raw.decode(errors="replace")})
                    outer.arrived.notify_all()
                self._reply(outer.post_status, b"{}", {"Content-Type": "application/json"})

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls is not None:  # HTTPS: the handshake happens in each connection's own thread
            self.httpd.socket = tls.wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Wait until ``predicate`` (of ``requests`` or ``posts``) holds, woken by each request as it
        arrives; False if it still does not after ``timeout`` seconds."""
        with self.arrived:
            return self.arrived.wait_for(predicate, timeout)

    def serve(
        self,
        path: str,
        body: bytes | str,
        status: int = 200,
        delay: float = 0.0,
        before: Callable[[], None] | None = None,
        **headers: str,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        hdrs = {
            "Content-Type": "text/html; charset=utf-8",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        self.routes[path] = Route(data, status, hdrs, delay, before)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pages() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.close()


class SMTPSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1."""

    def __init__(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = message_from_bytes(envelope.content, policy=policy.default)
                assert isinstance(msg, EmailMessage)
                sink.messages.append(msg)
                return "250 OK"

        self.port = port or free_port()
        # ready_timeout bounds a wait for the server's own "ready" event: 5 s by default, which a
        # loaded machine can take to start a thread and an event loop.
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, ready_timeout=60)

    def start(self) -> SMTPSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=alerts@example.com&to=privacy@example.com"


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink().start()
    yield sink
    sink.stop()


def body_of(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


def write_config(
    tmp: Path,
    vendors: list[tuple[str, str]],
    notify: list[str] = (),
    extra: str = "",  # type: ignore[assignment]
    settings: str = "",
) -> Path:
    lines = ["[settings]", 'database = "pw.db"', "alert_retry_minutes = 0", "retries = 0", settings, ""]
    for name, url in vendors:
        lines += ["[[vendors]]", f"name = {json.dumps(name)}", f"url = {json.dumps(url)}", ""]
    for i, url in enumerate(notify):
        lines += ["[[notify]]", f'name = "target{i + 1}"', f"url = {json.dumps(url)}", ""]
    path = tmp / "config.toml"
    path.write_text("\n".join(lines) + extra)
    return path


def cli(
    config: Path | None, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess."""
    cmd = [sys.executable, "-m", "policy_watch"]
    if config is not None:
        cmd += ["--config", str(config)]
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env, timeout=timeout)


def wait_for(predicate: Any, timeout: float = 60.0) -> bool:
    """Poll ``predicate`` for a state outside this process (a file, a database); the timeout is an
    upper bound for a failure, not an expected duration. Requests to a ``PageServer`` are awaited
    with ``PageServer.wait_until`` instead."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
