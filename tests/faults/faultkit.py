"""Real local parts for the fault cases, and the one check every case runs.

``RawServer`` is a TCP server on 127.0.0.1 that answers each request with a function of the
socket, so a case can refuse, stall, cut, reset or lie about lengths. ``World`` is a
configuration with one healthy vendor and one vendor the case breaks, a real SQLite file and a
webhook receiver. ``World.fault`` runs the case and checks the invariants:

* the run finishes; the broken vendor gets an error naming the vendor, the URL and the cause;
* the healthy vendor is checked normally;
* no snapshot, change or alert is invented, and nothing stored earlier is lost;
* the next healthy run behaves as if the fault never happened.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy_watch.config import Config, load_config
from policy_watch.fetch import Fetcher
from policy_watch.models import VendorResult
from policy_watch.pipeline import RunReport, fetch_options, run_check
from policy_watch.store import Store

ROOT = Path(__file__).resolve().parents[2]
ZENDESK = ROOT / "tests" / "fixtures" / "zendesk"
V1 = (ZENDESK / "v1.html").read_bytes()
V2 = (ZENDESK / "v2.html").read_bytes()
V3 = (ZENDESK / "v3.html").read_bytes()
RUN_SECONDS = 60  # a faulty run longer than this hangs
HEALTHY = "Healthy Vendor"
FAULTY = "Faulty Vendor"


# --- the record the summary line is computed from ------------------------------------------------


@dataclass
class CaseRecord:
    fault_class: str
    data_lost: int = 0
    false_alerts: int = 0
    outcome: str = "not run"


@dataclass
class Matrix:
    cases: dict[str, CaseRecord] = field(default_factory=dict)

    def summary(self) -> str:
        """Counts from the recorded outcomes; a known bug's lost rows or false alerts are counted too."""
        done = [c for c in self.cases.values() if c.outcome != "not run"]
        classes = {c.fault_class for c in done}
        count = {o: sum(c.outcome == o for c in done) for o in ("passed", "failed", "skipped", "xfailed")}
        parts = [f"{len(classes)} classes", f"{len(done)} cases", f"{count['passed']} passed"]
        parts += [f"{count[o]} {o}" for o in ("failed", "skipped") if count[o]]
        if count["xfailed"]:
            parts.append(f"{count['xfailed']} known bugs (xfail)")
        known = [c for c in done if c.outcome == "xfailed"]
        rest = [c for c in done if c.outcome != "xfailed"]
        line = f"fault matrix: {', '.join(parts)}"
        for label, attr in (("data lost", "data_lost"), ("false alerts", "false_alerts")):
            n, k = sum(getattr(c, attr) for c in rest), sum(getattr(c, attr) for c in known)
            line += f"; {label}: {n}" + (f" (+{k} in known bugs)" if k else "")
        return line


MATRIX = Matrix()


# --- a raw TCP server -------------------------------------------------------------------------------

Behaviour = Callable[[socket.socket, str], None]


class RawServer:
    """A server on 127.0.0.1 whose answer to a request is ``behaviour(conn, path)``; optionally TLS."""

    def __init__(
        self, behaviour: Behaviour, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.behaviour = behaviour
        self.host = host
        self.tls = tls
        self.stop = threading.Event()
        self.requests: list[str] = []
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str = "/page") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
                self._conns.append(conn)
            conn.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            path = line.split(" ")[1] if " " in line else "/"
            self.requests.append(path)
            self.behaviour(conn, path)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.close()


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = (
        [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()] + ["Connection: close", "", ""]
    )
    return "\r\n".join(lines).encode("latin-1")


def respond(
    body: bytes,
    status: int = 200,
    ctype: str = "text/html; charset=utf-8",
    extra: dict[str, str] | None = None,
) -> Behaviour:
    def go(conn: socket.socket, path: str) -> None:
        headers = {"Content-Type": ctype, "Content-Length": str(len(body)), **(extra or {})}
        conn.sendall(head(status, headers) + body)

    return go


HOLD_SECONDS = 120  # longer than any run's bound (RUN_SECONDS): a client that never gives up fails


def hold(conn: socket.socket, stop: threading.Event) -> None:
    """Keep the connection open, answering nothing, until the client gives up (closes it), the
    server stops or HOLD_SECONDS pass."""
    end = time.monotonic() + HOLD_SECONDS
    conn.settimeout(0.2)
    while not stop.is_set() and time.monotonic() < end:
        try:
            if not conn.recv(65536):
                return  # the client closed the connection
        except TimeoutError:
            continue
        except OSError:
            return


# --- the database as the invariants see it -----------------------------------------------------------


@dataclass(frozen=True)
class DbState:
    snapshots: dict[int, tuple[Any, ...]]  # id -> (vendor, content_hash, status, first_seen, entry_count)
    entries: dict[int, list[tuple[Any, ...]]]
    changes: list[tuple[Any, ...]]
    outbox: list[tuple[Any, ...]]  # (id, vendor, kind, dedupe_key)
    windows: int


def db_state(path: Path) -> DbState:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        snaps = {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                "select s.id, v.name, s.content_hash, s.status, s.first_seen, s.entry_count"
                " from snapshots s join vendors v on v.id = s.vendor_id order by s.id"
            )
        }
        entries: dict[int, list[tuple[Any, ...]]] = {}
        for r in conn.execute("select * from entries order by snapshot_id, position"):
            entries.setdefault(r[0], []).append(tuple(r))
        changes = [tuple(r) for r in conn.execute("select * from changes order by id")]
        outbox = [
            tuple(r) for r in conn.execute("select id, vendor, kind, dedupe_key from outbox order by id")
        ]
        windows = int(conn.execute("select count(*) from windows").fetchone()[0])
    finally:
        conn.close()
    return DbState(snaps, entries, changes, outbox, windows)


def lost_rows(before: DbState, after: DbState) -> list[str]:
    """Everything stored before that is gone or altered now (a suspect snapshot may later be superseded)."""
    lost = []
    for sid, (vendor, chash, status, first_seen, count) in before.snapshots.items():
        now = after.snapshots.get(sid)
        if now is None or now[:2] != (vendor, chash) or now[3:] != (first_seen, count):
            lost.append(f"snapshot {sid} of {vendor}")
        elif status in ("good", "accepted") and now[2] != status:
            lost.append(f"snapshot {sid} of {vendor} lost its status {status}")
        if after.entries.get(sid) != before.entries.get(sid):
            lost.append(f"entries of snapshot {sid}")
    lost += [f"change {c[0]}" for c in before.changes if c not in after.changes]
    lost += [f"alert {o[0]}" for o in before.outbox if o not in after.outbox]
    return lost


def half_written(path: Path) -> list[int]:
    """Snapshots whose entry_count differs from their stored entries."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [
            r[0]
            for r in conn.execute(
                "select s.id from snapshots s where s.entry_count !="
                " (select count(*) from entries e where e.snapshot_id = s.id)"
            )
        ]
    finally:
        conn.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(str(path))
    try:
        return str(conn.execute("pragma integrity_check").fetchone()[0])
    finally:
        conn.close()


# --- the world of one case ---------------------------------------------------------------------------


@dataclass
class CliResult:
    code: int
    out: str
    err: str
    max_rss_kb: int
    seconds: float


class World:
    """A healthy vendor and a vendor the case breaks, a real database and a webhook receiver."""

    def __init__(
        self,
        tmp: Path,
        pages: Any,
        record: CaseRecord,
        *,
        settings: str = "",
        faulty_body: bytes = V1,
        healthy_body: bytes = V2,
    ) -> None:
        self.tmp = tmp
        self.pages = pages
        self.record = record
        self.settings = settings
        self.faulty_body = faulty_body
        self.faulty_ctype = "text/html; charset=utf-8"
        pages.serve("/healthy", healthy_body)
        self.raw = RawServer(respond(faulty_body))
        self.db = tmp / "pw.db"
        self.config_path = tmp / "config.toml"
        self.write_config()

    def configure(self, settings: str) -> None:
        self.settings = settings
        self.write_config()

    def use_page(self, body: bytes, ctype: str = "text/html; charset=utf-8") -> None:
        """The faulty vendor's healthy page (before the baseline is taken)."""
        self.faulty_body = body
        self.faulty_ctype = ctype
        self.heal()

    def serve_faulty(self, behaviour: Behaviour) -> None:
        self.raw.behaviour = behaviour

    def heal(self) -> None:
        self.raw.behaviour = respond(self.faulty_body, ctype=self.faulty_ctype)

    @property
    def faulty_url(self) -> str:
        return self.raw.url()

    def write_config(self, faulty_url: str | None = None, notify: list[str] | None = None) -> Path:
        targets = notify if notify is not None else [self.pages.url("/hook").replace("http://", "json://")]
        settings = {"database": f'"{self.db}"', "retries": "0", "timeout": "3", "alert_retry_minutes": "0"}
        for line in self.settings.splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                settings[key.strip()] = value.strip()
        lines = ["[settings]", *(f"{k} = {v}" for k, v in settings.items()), ""]
        for name, url in ((HEALTHY, self.pages.url("/healthy")), (FAULTY, faulty_url or self.faulty_url)):
            lines += ["[[vendors]]", f'name = "{name}"', f'url = "{url}"', ""]
        for i, t in enumerate(targets):
            lines += ["[[notify]]", f'name = "hook{i + 1}"', f'url = "{t}"', ""]
        self.config_path.write_text("\n".join(lines))
        return self.config_path

    def config(self) -> Config:
        return load_config(self.config_path)

    def run(self, *, fetcher: Fetcher | None = None, deliver: bool = True) -> RunReport:
        cfg = self.config()
        store = Store.open(cfg.settings.database)
        try:
            f = fetcher or Fetcher(fetch_options(cfg))
            with f:
                return run_check(cfg, store, f, deliver_alerts=deliver)
        finally:
            store.close()

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
        return run_cli(self.config_path, *args, env=env, timeout=timeout)

    def baseline(self) -> DbState:
        report = self.run()
        got = by_vendor(report)
        assert got[HEALTHY].status == "baseline", got[HEALTHY]
        assert got[FAULTY].status == "baseline", got[FAULTY]
        return db_state(self.db)

    def fault(
        self,
        inject: Callable[[], str | None],
        restore: Callable[[], None],
        *,
        cause: str = "",
        status: str = "error",
        fetcher: Callable[[], Fetcher] | None = None,
    ) -> VendorResult:
        """Run with the fault, check the invariants, restore, run again, check again."""
        before = self.baseline()
        posts = len(self.pages.posts)
        url = inject() or self.faulty_url
        if url != self.faulty_url:
            self.write_config(faulty_url=url)
        t0 = time.monotonic()
        report = self.run(fetcher=fetcher() if fetcher else None)
        elapsed = time.monotonic() - t0
        after = db_state(self.db)
        got = by_vendor(report)
        bad = got[FAULTY]
        self._count(before, after, posts, structure_alarm=status == "suspect")
        assert got[HEALTHY].status == "unchanged", got[HEALTHY]
        assert bad.status == status, bad
        if status != "unchanged":
            assert bad.error is not None and FAULTY in bad.error, bad.error
            if status == "error":
                assert url in bad.error, f"URL missing from: {bad.error}"
            assert re.search(cause, bad.error, re.IGNORECASE), f"cause {cause!r} not in: {bad.error}"
        # A hang, not a speed: each case's timeouts are a few seconds; a server that holds a
        # connection does so for HOLD_SECONDS.
        assert elapsed < RUN_SECONDS, f"the faulty run took {elapsed:.1f} s"
        if status == "suspect":
            kinds = [o[2] for o in after.outbox if o not in before.outbox]
            assert kinds == ["structure"], f"expected one structure alarm, queued: {kinds}"
            assert any("structure" in str(p.get("title", "")) for p in self.pages.posts[posts:]), (
                "alarm not delivered"
            )

        restore()
        self.write_config()
        report = self.run()
        final = db_state(self.db)
        got = by_vendor(report)
        self._count(before, final, posts, structure_alarm=status == "suspect")
        assert got[HEALTHY].status == "unchanged", got[HEALTHY]
        assert got[FAULTY].status == "unchanged", got[FAULTY]
        return bad

    def _count(self, before: DbState, after: DbState, posts: int, *, structure_alarm: bool) -> None:
        """Count lost and invented rows into the case record, then assert there are none."""
        lost = lost_rows(before, after)
        half = half_written(self.db)
        new_snaps = {k: v for k, v in after.snapshots.items() if k not in before.snapshots}
        invented_snaps = [
            k for k, v in new_snaps.items() if not (structure_alarm and v[2] in ("suspect", "superseded"))
        ]
        new_alerts = [o for o in after.outbox if o not in before.outbox]
        invented_alerts = [o for o in new_alerts if not (structure_alarm and o[2] == "structure")]
        new_changes = [c for c in after.changes if c not in before.changes]
        allowed_posts = len(new_alerts) - len(invented_alerts)
        extra_posts = max(0, len(self.pages.posts) - posts - allowed_posts)
        self.record.data_lost += len(lost) + len(half)
        false = len(invented_snaps) + len(invented_alerts) + len(new_changes) + extra_posts
        self.record.false_alerts += false
        assert not lost and not half, f"lost: {lost}, half-written snapshots: {half}"
        assert not new_changes, f"invented changes: {new_changes}"
        assert not invented_snaps, f"invented snapshots: {new_snaps}"
        assert not invented_alerts, f"invented alerts: {invented_alerts}"
        assert after.windows == before.windows, "an objection window was opened"
        assert not extra_posts, f"unexpected webhook posts: {self.pages.posts[posts:]}"

    def close(self) -> None:
        self.raw.close()


def by_vendor(report: RunReport) -> dict[str, VendorResult]:
    got = {r.vendor: r for r in report.results}
    assert set(got) == {HEALTHY, FAULTY}, got
    return got


def run_cli(
    config: Path | None, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> CliResult:
    """Run the real command line; returns its exit code, output and peak memory (this child only)."""
    cmd = [sys.executable, "-m", "policy_watch"] + (["--config", str(config)] if config else []) + list(args)
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"pw-cli-{os.getpid()}-{threading.get_ident()}"
    t0 = time.monotonic()
    with open(f"{out_path}.out", "w+b") as out, open(f"{out_path}.err", "w+b") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=full_env)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, usage = os.wait4(p.pid, 0)
                break
            time.sleep(0.01)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = CliResult(
            p.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            int(usage.ru_maxrss),
            time.monotonic() - t0,
        )
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    return result


def self_signed(tmp: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1 (openssl CLI)."""
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def chunks(total: int, piece: bytes) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)
