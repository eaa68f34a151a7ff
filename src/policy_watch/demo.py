"""An offline end-to-end demonstration on two bundled versions of the Zendesk Connect page.

A local HTTP server on 127.0.0.1 serves version 1, then version 2, and receives the alert as
a webhook, so what is printed is exactly what a target would get.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from policy_watch import pipeline
from policy_watch.config import load_config
from policy_watch.fetch import Fetcher
from policy_watch.store import Store, run_lock

VENDOR = "Zendesk Connect"


class _DemoServer(ThreadingHTTPServer):
    page: bytes = b""
    received: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    server: _DemoServer

    def do_GET(self) -> None:
        body = self.server.page
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _page(name: str) -> bytes:
    return resources.files("policy_watch").joinpath("demo_pages", name).read_bytes()


def run_demo(workdir: Path, echo: Callable[[str], None] = print) -> Path:
    """Run the check twice (v1, then v2); print the alert; return the database path."""
    server = _DemoServer(("127.0.0.1", 0), _Handler)
    server.received = []
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        db = workdir / "policy_watch.db"
        for leftover in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            leftover.unlink(missing_ok=True)
        cfg_path = workdir / "config.toml"
        cfg_path.write_text(
            '[settings]\ndatabase = "policy_watch.db"\nobjection_days = 30\n\n'
            f'[[vendors]]\nname = "{VENDOR}"\nurl = "http://127.0.0.1:{port}/company/connect-subprocessors/"\n\n'
            f'[[notify]]\nname = "demo-webhook"\nurl = "json://127.0.0.1:{port}/alerts"\n'
        )
        config = load_config(cfg_path)
        for label, page in (("version 1 (May 2018)", "v1.html"), ("version 2 (November 2026)", "v2.html")):
            server.page = _page(page)
            with run_lock(config.settings.database), Fetcher(pipeline.fetch_options(config)) as fetcher:
                store = Store.open(config.settings.database)
                try:
                    report = pipeline.run_check(config, store, fetcher)
                finally:
                    store.close()
            for r in report.results:
                echo(
                    f"run on {label}: {r.vendor}: {r.status}, {r.entries} entries"
                    + (f", {len(r.changes)} changes" if r.changes else "")
                    + (f" — {r.error}" if r.error else "")
                )
        echo("")
        for msg in server.received:
            echo("=" * 72)
            echo(f"Alert received by the webhook: {msg.get('title', '')}")
            echo("-" * 72)
            echo(str(msg.get("message", "")))
            echo("=" * 72)
        if not server.received:
            echo("No alert was received: something is wrong.")
        echo("")
        echo(f"The database is at {config.settings.database}. Try:")
        echo(f"  policy-watch --config {cfg_path} changes")
        echo(f"  policy-watch --config {cfg_path} deadlines")
        echo(f'  policy-watch --config {cfg_path} show "{VENDOR}"')
        echo(f'  sqlite-utils query {config.settings.database} "select * from change_log" --table')
        return config.settings.database
    finally:
        server.shutdown()
        server.server_close()
