"""Network faults: the connection fails in every way a socket can, against real local servers."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import httpx
import pytest
from faultkit import (
    FAULTY,
    HEALTHY,
    V1,
    V3,
    RawServer,
    World,
    by_vendor,
    head,
    hold,
    respond,
    self_signed,
)

from policy_watch.errors import FetchError
from policy_watch.fetch import Fetcher, FetchOptions, is_private_host
from policy_watch.pipeline import RunReport


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused(world: World) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/page"
    world.fault(lambda: url, lambda: None, cause=r"connection failed: .*refused")


def test_server_accepts_and_never_answers(world: World) -> None:
    world.configure("timeout = 1")
    world.fault(
        lambda: world.serve_faulty(lambda c, p: hold(c, world.raw.stop)), world.heal, cause=r"timed out"
    )


def test_stall_mid_body(world: World) -> None:
    world.configure("timeout = 1")

    def stall(conn: socket.socket, path: str) -> None:
        conn.sendall(
            head(200, {"Content-Type": "text/html", "Content-Length": str(len(V1))}) + V1[: len(V1) // 2]
        )
        hold(conn, world.raw.stop)

    world.fault(lambda: world.serve_faulty(stall), world.heal, cause=r"timed out \(ReadTimeout\)")


def test_body_shorter_than_content_length(world: World) -> None:
    def short(conn: socket.socket, path: str) -> None:
        conn.sendall(
            head(200, {"Content-Type": "text/html", "Content-Length": str(len(V1))}) + V1[: len(V1) // 2]
        )
        conn.shutdown(socket.SHUT_WR)

    world.fault(
        lambda: world.serve_faulty(short), world.heal, cause=r"connection broken: .*incomplete|complete"
    )


def test_connection_reset(world: World) -> None:
    def reset(conn: socket.socket, path: str) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    world.fault(lambda: world.serve_faulty(reset), world.heal, cause=r"reset|connection broken|disconnected")


def test_reset_after_headers(world: World) -> None:
    def reset(conn: socket.socket, path: str) -> None:
        conn.sendall(head(200, {"Content-Type": "text/html", "Content-Length": str(len(V1))}) + V1[:1000])
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    world.fault(lambda: world.serve_faulty(reset), world.heal, cause=r"reset|connection broken|read error")


def test_tls_self_signed_certificate(world: World, tmp_path: Path) -> None:
    tls = RawServer(respond(V1), tls=self_signed(tmp_path))
    try:
        world.fault(lambda: tls.url(), lambda: None, cause=r"TLS certificate verification failed")
        assert tls.requests == [], "a request was sent over the unverified connection"
        assert world.raw.requests.count("/page") == 2, "fetched over plain HTTP during the TLS fault"
    finally:
        tls.close()


class Trickle:
    """A server that sends its answer one byte at a time, a byte every 0.2 s, for up to a minute:
    every read returns within any read timeout, but the answer never completes in time. Records
    how each answer ended: "cut" (the client closed the connection), "sent" or "gave up"."""

    def __init__(self, stop: threading.Event, where: str) -> None:
        self.stop, self.where = stop, where
        self.ends: list[str] = []
        self.ended = threading.Condition()

    def __call__(self, conn: socket.socket, path: str) -> None:
        headers = head(200, {"Content-Type": "text/html", "Content-Length": str(len(V1))})
        slow, fast = (headers, b"") if self.where == "headers" else (V1, headers)
        end = "gave up"
        try:
            conn.sendall(fast)
            until = time.monotonic() + 60
            for i in range(len(slow)):
                if self.stop.is_set() or time.monotonic() > until:
                    break
                conn.sendall(slow[i : i + 1])  # fails once the client has closed the connection
                time.sleep(0.2)
            else:
                end = "sent"
        except OSError:
            end = "cut"
        with self.ended:
            self.ends.append(end)
            self.ended.notify_all()


@pytest.mark.parametrize("where", ["headers", "body"])
def test_trickling_server_is_cut_off_at_the_attempt_deadline(world: World, where: str) -> None:
    """``timeout`` bounds a whole attempt, not each read; the retries share a total budget."""
    world.configure("timeout = 2\nretries = 1")
    trickle = Trickle(world.raw.stop, where)
    bad = world.fault(
        lambda: world.serve_faulty(trickle),
        world.heal,
        cause=r"timed out .*no complete answer within 2 s.*2 attempts",
    )
    assert world.raw.requests.count("/page") == 1 + 2 + 1, world.raw.requests
    # Both attempts were cut off by the client while the answer was still trickling in; a
    # deadline on each read only would have let it trickle on for a minute.
    with trickle.ended:
        trickle.ended.wait_for(lambda: len(trickle.ends) == 2, timeout=60)
    assert trickle.ends == ["cut", "cut"], (trickle.ends, bad)


def test_name_that_resolves_to_loopback_is_refused_at_connect(world: World) -> None:
    """DNS rebinding: the guard's own look-up of the vendor's name said public (here: it is told
    so), but the address the connection would go to is loopback. Nothing is sent to it."""
    fooled = lambda host: host != "localhost" and is_private_host(host)  # noqa: E731
    with Fetcher(FetchOptions(retries=0), is_private=fooled) as f, pytest.raises(FetchError) as e:
        f.fetch(f"http://localhost:{world.raw.port}/page")
    assert "refused connection to a private or local address 127.0.0.1" in e.value.cause, e.value
    assert world.raw.requests == [], "a request reached the loopback server"
    # The same vendor, when its own URL is known to be local, is fetched as before.
    with Fetcher(FetchOptions(retries=0)) as f:
        assert f.fetch(f"http://localhost:{world.raw.port}/page").body == V1


def test_redirect_to_a_name_that_resolves_to_loopback_is_refused_at_connect(world: World) -> None:
    """A public-looking vendor (127.0.0.2 plays it) redirects to a name whose look-up the guard was
    fooled on; the connection to the loopback address it really has is refused."""
    public = RawServer(
        lambda c, p: c.sendall(
            head(302, {"Location": f"http://localhost:{world.raw.port}/page", "Content-Length": "0"})
        ),
        host="127.0.0.2",
    )
    fooled = lambda host: host not in ("localhost", "127.0.0.2") and is_private_host(host)  # noqa: E731
    try:
        with Fetcher(FetchOptions(retries=0), is_private=fooled) as f, pytest.raises(FetchError) as e:
            f.fetch(public.url())
    finally:
        public.close()
    assert "refused connection to a private or local address 127.0.0.1" in e.value.cause, e.value
    assert public.requests == ["/page"] and world.raw.requests == [], world.raw.requests


def test_the_address_an_answer_came_from_is_checked_whatever_the_transport(world: World) -> None:
    """With a transport of its own (no guarded connections), the fetcher still refuses an answer
    that came from a private address, by the connection's peer address."""
    fooled = lambda host: host != "localhost" and is_private_host(host)  # noqa: E731
    transport = httpx.HTTPTransport()
    with (
        Fetcher(FetchOptions(retries=0), transport=transport, is_private=fooled) as f,
        pytest.raises(FetchError) as e,
    ):
        f.fetch(f"http://localhost:{world.raw.port}/page")
    assert "refused connection to a private or local address 127.0.0.1" in e.value.cause, e.value


def test_a_slow_vendor_delays_no_other_vendors_alert(world: World) -> None:
    """The healthy vendor's change is alerted while the other vendor's page is still coming; the
    alert is sent once, not again at the end of the run."""
    world.configure("timeout = 300")  # the slow page is held until the test lets it go, not cut off
    world.baseline()
    release, served = threading.Event(), threading.Event()

    def slow(conn: socket.socket, path: str) -> None:
        release.wait(240)
        respond(V1)(conn, path)
        served.set()

    world.serve_faulty(slow)
    world.pages.serve(
        "/healthy", V3.replace(b"Cloudflare, Inc.", b"Cloudflare Global, Inc.")
    )  # a real change
    posts = len(world.pages.posts)
    reports: list[RunReport] = []
    run = threading.Thread(target=lambda: reports.append(world.run()))
    run.start()
    try:
        # the alert arrives while the slow page is held back: no race with the run's end
        alerted = world.pages.wait_until(
            lambda: any(p.get("title", "").startswith(HEALTHY) for p in world.pages.posts[posts:]),
            timeout=60,
        )
        still_waiting = not served.is_set() and run.is_alive()
    finally:
        release.set()
        run.join(120)
    assert alerted and still_waiting, "the alert waited for the slow page"
    got = by_vendor(reports[0])
    assert got[HEALTHY].status == "changed" and got[FAULTY].status == "unchanged", got
    assert [p["title"] for p in world.pages.posts[posts:]] == [world.pages.posts[posts]["title"]], (
        "sent twice"
    )
    assert reports[0].delivered == 1 and reports[0].pending == 0, reports[0]
