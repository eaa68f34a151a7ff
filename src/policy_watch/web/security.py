"""Who may use the review page, and what every response carries.

- Bound to a loopback address without credentials, the page is the OS user's own: decisions are
  recorded as that user, and a request whose Host is not a loopback name is refused (a web page
  elsewhere cannot reach it through DNS rebinding).
- Any other address needs credentials from the environment: ``POLICY_WATCH_WEB_USER`` with
  ``POLICY_WATCH_WEB_PASSWORD`` (HTTP basic auth; decisions are recorded as that user), or
  ``POLICY_WATCH_WEB_TOKEN`` (sent as ``Authorization: Bearer``, or typed once into the login
  form with the reviewer's name, which a signed cookie then carries). When credentials are set,
  they are required on loopback too.
- Every POST carries a token tied to a random cookie (HMAC with a key made at start-up and
  never written anywhere); a POST without it, or from another origin, is refused.
- Every response carries a Content-Security-Policy without inline script, nosniff, a
  Referrer-Policy (same-origin) and frame-ancestors 'none'.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from policy_watch.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_ENV = "POLICY_WATCH_WEB_TOKEN"
USER_ENV = "POLICY_WATCH_WEB_USER"
PASSWORD_ENV = "POLICY_WATCH_WEB_PASSWORD"
CSRF_COOKIE = "pw_csrf"
SESSION_COOKIE = "pw_session"
SESSION_SECONDS = 12 * 3600
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
PUBLIC_PATHS = ("/login", "/static/")

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'none'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" would make a browser send "Origin: null" with forms
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


def is_loopback(host: str) -> bool:
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """The credentials the page requires (none on loopback unless set) and the signing key."""

    loopback: bool
    os_user: str
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def from_env(cls, host: str, env: MutableMapping[str, str] | None = None) -> Access:
        env = os.environ if env is None else env
        token = env.get(TOKEN_ENV) or None
        user, password = env.get(USER_ENV) or None, env.get(PASSWORD_ENV) or None
        if bool(user) != bool(password):
            raise ConfigError(
                USER_ENV if not user else PASSWORD_ENV,
                None,
                f"set both {USER_ENV} and {PASSWORD_ENV} for basic auth, or neither",
            )
        loopback = is_loopback(host)
        if not loopback and not token and not user:
            raise ConfigError(
                "serve",
                "--host",
                f"{host} is not a loopback address: set {TOKEN_ENV}, or {USER_ENV} and {PASSWORD_ENV},"
                " so that only people with credentials can reach the page",
            )
        import getpass

        return cls(loopback=loopback, os_user=getpass.getuser(), token=token, user=user, password=password)

    @property
    def open(self) -> bool:
        """No credentials: the page belongs to the OS user (loopback only)."""
        return not self.token and not self.user

    def sign(self, *parts: str) -> str:
        return hmac.new(self.key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, cookie: str) -> str:
        return self.sign("csrf", cookie)

    def check_csrf(self, cookie: str | None, token: str | None) -> bool:
        return bool(cookie and token) and hmac.compare_digest(self.csrf_token(str(cookie)), str(token))

    def session_cookie(self, name: str, now: float | None = None) -> str:
        expires = str(int((now or time.time()) + SESSION_SECONDS))
        encoded = base64.urlsafe_b64encode(name.encode()).decode()
        return f"{encoded}.{expires}.{self.sign('session', encoded, expires)}"

    def session_user(self, cookie: str | None) -> str | None:
        try:
            encoded, expires, mac = (cookie or "").split(".")
            if (
                not hmac.compare_digest(self.sign("session", encoded, expires), mac)
                or int(expires) < time.time()
            ):
                return None
            return base64.urlsafe_b64decode(encoded.encode()).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None

    def check_token(self, given: str) -> bool:
        return bool(self.token) and hmac.compare_digest(given.encode(), str(self.token).encode())

    def login(self, headers: dict[str, str], cookies: dict[str, str]) -> str | None:
        """The user a request is authenticated as, or None."""
        if self.open:
            return self.os_user
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "basic" and self.user and self.password:
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return None
            ok_user = hmac.compare_digest(user.encode(), self.user.encode())
            ok_password = hmac.compare_digest(password.encode(), self.password.encode())
            return user if ok_user and ok_password else None
        if scheme.lower() == "bearer" and self.check_token(value.strip()):
            return "token"
        return self.session_user(cookies.get(SESSION_COOKIE))


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header: treat as none
        return {}
    return {k: m.value for k, m in jar.items()}


def _host_name(host_header: str) -> str:
    return urlsplit(f"//{host_header}").hostname or ""


class Guard:
    """ASGI middleware: Host check, authentication, the CSRF cookie, security headers."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        cookies = _cookies(headers)
        new_cookies: list[str] = []
        secure = "; Secure" if scope.get("scheme") == "https" else ""

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in have]
                extra += [(b"set-cookie", c.encode()) for c in new_cookies]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        if self.access.loopback and self.access.open and not is_loopback(_host_name(headers.get("host", ""))):
            await _plain(
                send_with_headers, 421, "This page answers only to localhost and loopback addresses."
            )
            return
        csrf = cookies.get(CSRF_COOKIE)
        if not csrf:
            csrf = secrets.token_urlsafe(24)
            new_cookies.append(f"{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict{secure}")
        state = scope.setdefault("state", {})
        state["csrf_cookie"] = csrf
        state["csrf_token"] = self.access.csrf_token(csrf)
        state["cookies"] = cookies
        state["secure"] = bool(secure)
        user = self.access.login(headers, cookies)
        state["user"] = user
        path = scope.get("path", "/")
        if user is None and not path.startswith(PUBLIC_PATHS):
            await self._challenge(scope, send_with_headers)
            return
        if scope["method"] == "POST" and not self._same_origin(headers):
            await _plain(send_with_headers, 403, "Refused: this form was sent from another site.")
            return
        await self.app(scope, receive, send_with_headers)

    async def _challenge(self, scope: Scope, send: Send) -> None:
        if self.access.token and scope["method"] == "GET":
            target = scope.get("path", "/") + (
                "?" + scope["query_string"].decode() if scope.get("query_string") else ""
            )
            location = "/login?next=" + quote(target, safe="")
            await send(
                {"type": "http.response.start", "status": 303, "headers": [(b"location", location.encode())]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        extra = (
            [(b"www-authenticate", b'Basic realm="policy-watch", charset="UTF-8"')]
            if self.access.user
            else []
        )
        await _plain(send, 401, "Sign in to see this page.", extra)

    @staticmethod
    def _same_origin(headers: dict[str, str]) -> bool:
        """A browser names the page a form came from; it must be this host (absent: not a browser)."""
        origin = headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return urlsplit(origin).netloc == headers.get("host", "")


async def _plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
