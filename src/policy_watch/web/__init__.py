"""The review page: deadlines, decisions and evidence in a browser, from the same database.

Starlette (routing, forms) with Jinja2 templates, served by uvicorn; the only package that
imports them. Pages are rendered on the server and need no JavaScript. ``serve`` runs it in the
foreground (``policy-watch serve``); ``WebThread`` runs it beside the daemon's loop.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import date
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from policy_watch.config import Config
from policy_watch.errors import ConfigError, PolicyWatchError
from policy_watch.store import Store
from policy_watch.web.login import login_form, login_submit
from policy_watch.web.pages import Pages
from policy_watch.web.security import Access, Guard

__all__ = ["WebThread", "create_app", "parse_address", "serve"]
log = logging.getLogger(__name__)


def create_app(config: Config, access: Access, today: Callable[[], date] | None = None) -> Starlette:
    """The application; ``today`` is the date deadlines count from (default: today in UTC)."""
    pages = Pages(config, access) if today is None else Pages(config, access, today)

    async def error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if isinstance(exc, PolicyWatchError):
            status, detail = 503, str(exc)
        return pages.render(request, "error.html", status=status, status_code=status, detail=detail)

    static = resources.files("policy_watch.web") / "static"
    routes = [
        Route("/", pages.dashboard),
        Route("/vendors", pages.vendors),
        Route("/vendors/{vendor_id:int}", pages.vendor),
        Route("/vendors/{vendor_id:int}/diff", pages.diff),
        Route("/vendors/{vendor_id:int}/feed.atom", pages.feed),
        Route("/snapshots/{snapshot_id:int}/raw", pages.raw),
        Route("/changes", pages.changes),
        Route("/windows", pages.windows),
        Route("/windows/{window_id:int}", pages.window, methods=["GET"]),
        Route("/windows/{window_id:int}", pages.decide, methods=["POST"]),
        Route("/entity", pages.entity),
        Route("/feed.atom", pages.feed),
        Route("/login", login_form(pages), methods=["GET"]),
        Route("/login", login_submit(pages), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ]
    handlers: dict[Any, Any] = {HTTPException: error, PolicyWatchError: error, Exception: error}
    app = Starlette(routes=routes, middleware=[Middleware(Guard, access=access)], exception_handlers=handlers)
    app.state.pages = pages
    return app


def parse_address(value: str, key: str = "settings.web") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ConfigError(key, None, f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    return host.strip("[]"), int(port)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError("serve", "--host/--port", f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _server(config: Config, host: str, port: int) -> tuple[Any, socket.socket, str]:
    import uvicorn

    access = Access.from_env(host)
    # Bring the schema up to date once (what every CLI command does on opening); pages only read.
    Store.open(config.settings.database, create=False).close()
    sock = _bind(host, port)
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    app = create_app(config, access)
    threading.Thread(target=_warm, args=(app.state.pages,), name="pw-web-warm", daemon=True).start()
    uv = uvicorn.Config(app, log_level="warning", server_header=False, proxy_headers=False, lifespan="off")
    who = f"decisions recorded as {access.os_user}" if access.open else "sign-in required"
    return uvicorn.Server(uv), sock, f"http://{shown}:{actual}/ ({who})"


def _warm(pages: Pages) -> None:
    try:
        pages.warm()
    except Exception:  # only a head start: the first requests do the work themselves
        log.warning("could not prepare the company names in advance", exc_info=True)


def serve(config: Config, host: str, port: int, echo: Callable[[str], None] = print) -> None:
    """Serve until interrupted (SIGINT or SIGTERM)."""
    server, sock, url = _server(config, host, port)
    echo(f"policy-watch review page: {url}")
    server.run(sockets=[sock])


class WebThread:
    """The review page in a thread of the daemon; ``stop`` ends it."""

    def __init__(self, config: Config, address: str, echo: Callable[[str], None] = print) -> None:
        host, port = parse_address(address)
        self._server, self._sock, url = _server(config, host, port)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="pw-web", daemon=True
        )
        self._thread.start()
        echo(f"policy-watch review page: {url}")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
