"""A database built by real runs for the review page's tests, and the real `policy-watch serve`."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pwtest import ROOT, ZENDESK, PageServer, cli, recent, write_config, zendesk_page

ZENDESK_NAME = "Zendesk Connect"
EVIL = "Evil <b>Vendor</b>"
FLAKY = "Flaky Vendor"

SAFE_ROWS = [
    ("Safe One Inc.", "Hosting", "US"),
    ("Safe Two Ltd", "Email delivery", "IE"),
    ("Amazon Web Services, Inc.", "Cloud hosting", "Ireland"),
]
FLAKY_ROWS = [("Safe One Inc.", "Hosting", "US"), ("AWS", "Cloud hosting", "Germany")]
SCRIPT = "<script>alert('entity')</script>Evil Corp"
MENTION = "Mention Co <!here> <@U0ABCDEF>"
BIDI = "Payments \u202eevil\u202c done"
IMG = "<img src=x onerror=alert(1)>"
BIG = "Big Cell Ltd"
HOSTILE_ROWS = [
    (SCRIPT, "<!channel> hosting <@U123>", "US"),
    (MENTION, BIDI, IMG),
    (BIG, "A" * 100_000, "DE"),
]


def table_page(rows: list[tuple[str, str, str]], declared: str = "") -> bytes:
    """A plain subprocessor table; cell text is escaped, so the parser reads it back exactly."""
    body = "".join(
        f"<tr><td>{html.escape(e)}</td><td>{html.escape(p)}</td><td>{html.escape(c)}</td></tr>"
        for e, p, c in rows
    )
    dated = f"<p>Last updated: {declared}</p>" if declared else ""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Subprocessors</title>'
        f"<script>document.title='ran'</script><style>body{{display:none}}</style></head><body>"
        f"<h2>Subprocessors</h2>{dated}<table><tr><th>Entity Name</th><th>Purpose</th><th>Country</th></tr>"
        f"{body}</table></body></html>"
    ).encode()


@dataclass
class History:
    config: Path
    db: Path
    pages: PageServer


def build_history(tmp: Path) -> History:
    """Three vendors, two real runs: Zendesk v1 → v2 and the hostile rows added (each opens a
    window), and a vendor whose second check fails (its last good list stays)."""
    pages = PageServer()
    pages.serve("/zendesk", (ZENDESK / "v1.html").read_bytes())
    pages.serve("/evil", table_page(SAFE_ROWS))
    pages.serve("/flaky", table_page(FLAKY_ROWS))
    config = write_config(
        tmp, [(ZENDESK_NAME, pages.url("/zendesk")), (EVIL, pages.url("/evil")), (FLAKY, pages.url("/flaky"))]
    )
    first = cli(config, "run")
    assert first.returncode == 0, first.stderr
    declared = recent(3)
    pages.serve("/zendesk", zendesk_page("v2", declared))
    pages.serve("/evil", table_page(SAFE_ROWS + HOSTILE_ROWS))
    pages.serve("/flaky", b"down for maintenance", status=500)
    second = cli(config, "run")
    assert second.returncode == 1 and "Flaky Vendor" in second.stderr, second.stderr
    return History(config, tmp / "pw.db", pages)


class Server:
    """`policy-watch serve` in a child process; ``url`` is where it listens."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "policy_watch", "--config", str(config), "serve", "--port", "0", *args]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(self.proc.stdout.readline() if self.proc.stdout else "")
        )
        reader.start()
        reader.join(timeout=60)
        found = re.search(r"http://\S+?/", line[0]) if line else None
        if found is None:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"serve did not start: {line!r} {err}")
        self.url = found.group(0)
        self.banner = line[0]

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=20)
        return err


@contextmanager
def serving(config: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = Server(config, *args, env=env)
    try:
        yield server
    finally:
        server.stop()
