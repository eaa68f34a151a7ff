"""Network faults: the connection fails in every way a socket can, against real local servers."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from faultkit import V1, RawServer, World, head, hold, respond, self_signed


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused(world: World) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/page"
    world.fault(lambda: url, lambda: None, cause=r"connection failed: .*refused")


def test_server_accepts_and_never_answers(world: World) -> None:
    world.configure("timeout = 1")
    world.fault(lambda: world.serve_faulty(lambda c, p: hold(world.raw.stop)), world.heal, cause=r"timed out")


def test_stall_mid_body(world: World) -> None:
    world.configure("timeout = 1")

    def stall(conn: socket.socket, path: str) -> None:
        conn.sendall(
            head(200, {"Content-Type": "text/html", "Content-Length": str(len(V1))}) + V1[: len(V1) // 2]
        )
        hold(world.raw.stop)

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
