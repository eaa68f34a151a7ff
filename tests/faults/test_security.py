"""Security faults: redirects into private networks, secrets leaking into output, file permissions."""

from __future__ import annotations

import json
import socket
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from faultkit import FAULTY, HEALTHY, V1, V3, RawServer, World, head, respond

from policy_watch.fetch import Fetcher, FetchOptions, is_private_host, redirect_refusal
from policy_watch.pipeline import fetch_options

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("127.0.0.1", True),
        ("169.254.169.254", True),
        ("10.1.2.3", True),
        ("192.168.0.1", True),
        ("::1", True),
        ("[fe80::1]", True),
        ("localhost", True),
        ("metadata.localhost", True),
        ("0.0.0.0", True),
        ("93.184.216.34", False),
        ("2606:4700::1111", False),
        ("", False),
    ],
)
def test_private_address_rule(host: str, private: bool) -> None:
    assert is_private_host(host) is private


def test_redirect_decision() -> None:
    public = {"93.184.216.34", "2606:4700::1111"}

    def is_private(h: str) -> bool:
        return h not in public

    start = "http://93.184.216.34/subprocessors"
    assert redirect_refusal(start, start, is_private) is None
    assert redirect_refusal(start, "http://[2606:4700::1111]/x", is_private) is None
    for target in ("http://127.0.0.1/admin", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/"):
        assert "private or local address" in (redirect_refusal(start, target, is_private) or ""), target
    # a page that is itself on the local network may redirect within it
    assert redirect_refusal("http://10.0.0.2/a", "http://10.0.0.3/b", is_private) is None


class LoopbackOnly(httpx.BaseTransport):
    """Lets a request leave only for a loopback host; anything else fails the test, unsent."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport(retries=0)
        self.refused: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host not in LOOPBACK:
            self.refused.append(str(request.url))
            raise AssertionError(f"a request to {request.url} left the machine's loopback")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _guarded(options: FetchOptions, guard: LoopbackOnly) -> Fetcher:
    return Fetcher(options, transport=guard, is_private=lambda host: host != "127.0.0.1")


@pytest.mark.parametrize(
    "target", ["http://localhost:{port}/internal", "http://169.254.169.254/latest/meta-data/"]
)
def test_public_page_redirecting_to_private_address_is_refused(world: World, target: str) -> None:
    """127.0.0.1 plays the public vendor; localhost and the metadata address are the private targets."""
    guard = LoopbackOnly()
    location = target.format(port=world.raw.port)

    def redirect(conn: socket.socket, path: str) -> None:
        if path == "/internal":
            respond(b"<html><body>internal admin</body></html>")(conn, path)
        else:
            conn.sendall(head(302, {"Location": location, "Content-Length": "0"}))

    factory: Callable[[], Fetcher] = lambda: _guarded(fetch_options(world.config()), guard)  # noqa: E731
    world.fault(
        lambda: world.serve_faulty(redirect),
        world.heal,
        cause=r"refused redirect to a private",
        fetcher=factory,
    )
    assert "/internal" not in world.raw.requests and not guard.refused, (world.raw.requests, guard.refused)


def test_private_vendor_may_redirect_locally(world: World) -> None:
    """The rule does not break intranet pages: a vendor on a private address follows local redirects."""
    moved = RawServer(respond(V1))
    try:
        world.serve_faulty(
            lambda c, p: c.sendall(head(301, {"Location": moved.url(), "Content-Length": "0"}))
        )
        with Fetcher(FetchOptions(retries=0)) as f:
            result = f.fetch(world.faulty_url)
        assert result.final_url == moved.url() and result.body == V1
    finally:
        moved.close()


SECRET = "SECRETTOKEN123"


def test_secrets_never_in_output(world: World, tmp_path: Path) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    env = {"PW_HOOK_SECRET": SECRET}
    world.write_config(
        notify=[
            f"json://user:${{PW_HOOK_SECRET}}@127.0.0.1:{world.pages.port}/hook",
            f"json://user:${{PW_HOOK_SECRET}}@127.0.0.1:{dead_port}/hook?+X-Token=${{PW_HOOK_SECRET}}",
        ]
    )
    assert SECRET not in world.config_path.read_text()
    outputs = [world.cli("run", env=env)]
    world.pages.serve(
        "/healthy", V3.replace(b"Cloudflare, Inc.", b"Cloudflare Global, Inc.")
    )  # a real change
    world.serve_faulty(respond(b"<html><body>gone</body></html>", 500))  # and a failing vendor
    outputs += [
        world.cli("-v", "run", env=env),
        world.cli("run", "--json", env=env),
        world.cli("outbox", "--all", "--json", env=env),
        world.cli("notify-test", env=env),
        world.cli("changes", "--json", env=env),
    ]
    run = outputs[1]
    assert run.code == 1 and FAULTY in run.err, run.err
    assert any(p.get("title", "").startswith(HEALTHY) for p in world.pages.posts), (
        "the good target got nothing"
    )
    rows = json.loads(outputs[3].out)
    assert any(r["last_error"] for r in rows), "the failing target recorded no error"
    for r in outputs:
        assert SECRET not in r.out and SECRET not in r.err, f"secret printed: {r.out[:500]} {r.err[:500]}"
    for f in tmp_path.glob("pw.db*"):
        assert SECRET.encode() not in f.read_bytes(), f"secret stored in {f.name}"
    assert any("hook2" in line and "FAILED" in line for line in outputs[4].out.splitlines()), outputs[4].out


def test_database_files_are_owner_only(world: World, tmp_path: Path) -> None:
    world.db = tmp_path / "data" / "pw.db"
    world.write_config()
    r = world.cli("run")
    assert r.code == 0, r.err
    reader = sqlite3.connect(world.db)  # keeps the -wal and -shm files after the next run closes
    try:
        reader.execute("select count(*) from vendors").fetchone()
        r = world.cli("run")
        assert r.code == 0, r.err
        files = [world.db, *tmp_path.glob("data/pw.db-*"), tmp_path / "data" / "pw.db.lock"]
        assert {f.name for f in files} >= {"pw.db", "pw.db-wal", "pw.db-shm", "pw.db.lock"}, files
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f"{f.name}: {oct(f.stat().st_mode)}"
    finally:
        reader.close()
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
