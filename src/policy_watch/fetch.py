"""Fetch vendor pages with httpx: polite, bounded, and explicit about every failure.

The only module that imports httpx. One connection pool (an ``httpx.HTTPTransport``) serves the
run's threads; per-host semaphores keep us polite.

Requests go to the transport, not through an ``httpx.Client``. Every hop of a redirect must pass
the private-address rule and be read within the size cap, and a Client that follows redirects
reads each redirect's body whole, decompressing it without a limit, before it goes on
(``Client._send_handling_redirects``): redirects are followed here, one hop at a time, either
way. What a Client would add besides (building requests, a cookie jar, event hooks) cost more
CPU time per request than it saved lines (benchmarks/README.md, "Fetching on httpx.Client").
Cookies a server sets while redirecting go along that chain and the page's retries, never to
another page.

Size: a body is decompressed in bounded steps, so neither a long body nor a short one that
inflates (a gzip bomb) gets past ``max_bytes``. Time: httpx's timeouts bound each read;
``timeout`` bounds one attempt end to end (connecting, every redirect, the whole body), so a
server that trickles a byte a second cannot hold a vendor, and all attempts and the waits
between them share ``timeout * (retries + 1)``. Addresses: for a vendor whose own URL is public,
each connection goes to an address that was checked (a name is resolved once, and the socket
connects to that address), and the address each answer came from is checked again, so a name
that answers public first and private second (DNS rebinding) or a reused connection cannot reach
a private address. The deadline and the address check live in the pool's network backend
(``_GuardedBackend``), steered per thread by the fetch in progress. HTTPS certificates are
checked against certifi's bundle, or what ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from policy_watch.errors import BlockedError, FetchError
from policy_watch.models import FetchResult

# What the parser reads.
PAGE_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "application/xml",
    "text/xml",
    "application/pdf",
)
_RETRY_STATUS = {429, 500, 502, 503, 504}
# Markup only bot-challenge and block pages carry (Cloudflare, Akamai, Imperva, DataDome,
# PerimeterX, AWS WAF). Not "captcha" alone: a list may name a captcha vendor as a
# subprocessor, and a subscribe form may carry a reCAPTCHA widget.
_CHALLENGE_MARKERS = (
    b"/cdn-cgi/challenge-platform/",
    b"cf_chl_",
    b"cf-challenge",
    b"<title>just a moment...</title>",
    b"checking your browser before accessing",
    b"<title>attention required! | cloudflare</title>",
    b"<title>access denied</title>",
    b"_incapsula_resource",
    b"captcha-delivery.com",
    b"px-captcha",
    b"awswafintegration",
)
# Response headers that say the answer is a challenge, not the page.
_CHALLENGE_HEADERS = (
    ("cf-mitigated", "challenge"),
    ("x-amzn-waf-action", "challenge"),
    ("x-amzn-waf-action", "captcha"),
)


@dataclass(frozen=True, slots=True)
class FetchOptions:
    user_agent: str = "policy-watch/0.1"
    timeout: float = 20.0
    max_bytes: int = 10 * 1024 * 1024
    retries: int = 2
    max_redirects: int = 10
    per_host: int = 2
    concurrency: int = 16
    backoff: float = 0.5  # base seconds of exponential backoff
    max_retry_after: float = 30.0


class Fetcher:
    """Fetch pages; thread-safe. Use as a context manager to close the connection pool.

    ``is_private(host)`` decides whether a host name or address is private (``is_private_host``
    by default): applied to a vendor's own URL, to each redirect target, and to the address
    each connection is made to and each answer comes from. ``transport`` replaces the guarded
    connection pool (the address of each answer is still checked).
    """

    def __init__(
        self,
        options: FetchOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        is_private: Callable[[str], bool] | None = None,
    ) -> None:
        self.options = o = options or FetchOptions()
        self._transport = transport or _guarded_transport(o.concurrency)
        self._headers = [
            ("User-Agent", o.user_agent),
            ("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"),
            ("Accept-Encoding", "gzip, deflate"),  # what _read_capped decompresses
        ]
        self._extensions = {"timeout": httpx.Timeout(o.timeout, connect=min(10.0, o.timeout)).as_dict()}
        self._sleep = sleep
        self._is_private = is_private or is_private_host
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """Fetch one page. Raises FetchError (or BlockedError) with the cause."""
        if urlsplit(url).scheme not in ("http", "https"):
            return read_file(url, self.options.max_bytes)
        headers = list(self._headers)
        # A validator that is not ASCII (a server may send one) cannot be sent back: fetch in full.
        if etag and etag.isascii():
            headers.append(("If-None-Match", etag))
        if last_modified and last_modified.isascii():
            headers.append(("If-Modified-Since", last_modified))
        cookies = httpx.Cookies()  # this page's own: set while redirecting, kept for its retries
        o = self.options
        start = time.monotonic()
        budget_end = start + o.timeout * (o.retries + 1)  # every attempt and every wait between them
        # A vendor whose own URL is private may go anywhere; any other may connect to public addresses only.
        peer_check = None if self._is_private(urlsplit(url).hostname or "") else self._is_private
        attempt = 0
        while True:
            try:
                with self._host_slot(url):
                    _CALL.start(min(time.monotonic() + o.timeout, budget_end), peer_check)
                    try:
                        result = self._attempt(url, headers, cookies)
                    finally:
                        _CALL.end()
            except _Retry as r:
                attempt += 1
                delay = r.delay if r.delay is not None else self._backoff(attempt)
                if attempt > o.retries or time.monotonic() + delay >= budget_end:
                    if attempt > 1:
                        spent = time.monotonic() - start
                        r.error.cause += f" ({attempt} attempts in {spent:.1f} s)"
                    raise r.error from None
                self._sleep(delay)
                continue
            ms = int((time.monotonic() - start) * 1000)
            return replace(result, duration_ms=ms)

    def _backoff(self, attempt: int) -> float:
        base = self.options.backoff * (2.0 ** (attempt - 1))
        return base + random.uniform(0, base / 2)

    def _host_slot(self, url: str) -> threading.BoundedSemaphore:
        """What ``per_host`` counts by: the URL's host and port."""
        host = urlsplit(url).netloc.lower()
        with self._lock:
            sem = self._hosts.get(host)
            if sem is None:
                sem = self._hosts[host] = threading.BoundedSemaphore(self.options.per_host)
            return sem

    def _attempt(self, url: str, headers: list[tuple[str, str]], cookies: httpx.Cookies) -> FetchResult:
        """One attempt at the page, its redirects followed one hop at a time."""
        current = url
        seen: set[str] = set()
        try:
            for _ in range(self.options.max_redirects + 1):
                if current in seen:
                    raise FetchError(url, f"redirect loop at {current}")
                seen.add(current)
                refused = redirect_refusal(url, current, self._is_private)
                if refused:
                    raise FetchError(url, refused)
                request = httpx.Request("GET", current, headers=headers, extensions=self._extensions)
                if cookies:
                    cookies.set_cookie_header(request)
                response = self._transport.handle_request(request)
                response.request = request
                try:
                    self._check_peer(url, current, response)
                    if "set-cookie" in response.headers:
                        cookies.extract_cookies(response)
                    if not response.is_redirect or response.status_code == 304:
                        return self._answer(url, current, response)
                    current = self._redirect_target(url, current, response)
                finally:
                    response.close()  # the connection goes back to the pool, or is dropped if unread
            raise FetchError(url, f"too many redirects (more than {self.options.max_redirects})")
        except httpx.TimeoutException as e:
            why = f"timed out ({type(e).__name__}): no complete answer within {self.options.timeout:g} s"
            raise _Retry(FetchError(url, why), None) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as e:
            if _CALL.refused is not None:
                why = f"refused connection to a private or local address {_CALL.refused} ({current})"
                raise FetchError(url, why) from None
            raise _Retry(FetchError(url, _describe(e)), None) from None
        except httpx.HTTPError as e:
            raise FetchError(url, _describe(e)) from None
        except (ValueError, httpx.InvalidURL) as e:  # a malformed Location or header value
            raise FetchError(url, f"invalid request: {e}") from None

    def _redirect_target(self, url: str, current: str, r: httpx.Response) -> str:
        location = r.headers.get("location")
        if not location:
            raise FetchError(url, f"HTTP {r.status_code} redirect without a Location header")
        target: str = urljoin(current, location)
        if urlsplit(target).scheme not in ("http", "https"):
            raise FetchError(url, f"redirect to a non-HTTP URL: {target}")
        self._read_capped(url, r)  # finish the message so the connection can be reused
        return target

    def _check_peer(self, url: str, current: str, r: httpx.Response) -> None:
        """The address the answer actually came from (a new or a reused connection) must pass,
        whatever the transport."""
        check = _CALL.peer_check
        stream = r.extensions.get("network_stream")
        if check is None or stream is None:
            return
        addr = stream.get_extra_info("server_addr")
        if isinstance(addr, tuple) and addr and check(str(addr[0]).split("%")[0]):
            raise FetchError(url, f"refused connection to a private or local address {addr[0]} ({current})")

    def _answer(self, url: str, current: str, r: httpx.Response) -> FetchResult:
        if r.status_code in _RETRY_STATUS:
            raise _Retry(
                FetchError(url, f"HTTP {r.status_code} {r.reason_phrase}", status=r.status_code),
                _retry_after(r.headers.get("retry-after"), self.options.max_retry_after),
            )
        body = self._read_capped(url, r)  # a 304's too: its (empty) end lets the connection be reused
        if r.status_code >= 400:
            if r.status_code in (401, 403) or looks_like_challenge(body, r.headers):
                raise BlockedError(
                    url,
                    f"blocked: HTTP {r.status_code} (bot challenge or access denied)",
                    status=r.status_code,
                )
            raise FetchError(url, f"HTTP {r.status_code} {r.reason_phrase}", status=r.status_code)
        ctype = r.headers.get("content-type")
        not_modified = r.status_code == 304
        if not not_modified:  # a page, not its empty "unchanged"
            if not body.strip():
                raise FetchError(url, f"HTTP {r.status_code} with an empty body", status=r.status_code)
            mime = (ctype or "").split(";")[0].strip().lower()
            if mime and mime not in PAGE_TYPES:
                raise FetchError(url, f"not an HTML page or PDF: Content-Type {mime}", status=r.status_code)
        return FetchResult(
            url=url,
            final_url=current,
            status=r.status_code,
            body=body,
            content_type=ctype,
            etag=r.headers.get("etag"),
            last_modified_header=strong_last_modified(r.headers.get("last-modified"), r.headers.get("date")),
            not_modified=not_modified,
            challenge=not not_modified and challenge_headers(r.headers),
        )

    def _read_capped(self, url: str, r: httpx.Response) -> bytes:
        """The body, decompressed in bounded steps: the cap holds against gzip bombs, and memory with it."""
        limit = self.options.max_bytes
        encoding = (r.headers.get("content-encoding") or "identity").strip().lower()
        declared = r.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit and encoding == "identity":
            raise FetchError(url, f"response too large: {int(declared)} bytes (limit {limit})")
        decoder = _decoder(url, encoding)
        buf = bytearray()
        for chunk in r.iter_raw():
            data = chunk
            while data:
                if decoder is None:
                    buf += data
                    data = b""
                else:
                    try:
                        buf += decoder.decompress(data, limit + 1 - len(buf))
                    except zlib.error as e:
                        raise FetchError(url, f"broken {encoding} body: {e}") from None
                    data = decoder.unconsumed_tail
                if len(buf) > limit:
                    raise FetchError(url, f"response too large: over {limit} bytes (limit {limit})")
        return bytes(buf)


class _Retry(Exception):
    def __init__(self, error: FetchError, delay: float | None) -> None:
        self.error = error
        self.delay = delay


def read_file(path: str, max_bytes: int) -> FetchResult:
    """A vendor URL may be a local file (a saved page)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise FetchError(path, f"file too large: {size} bytes (limit {max_bytes})")
        body = p.read_bytes()
    except FileNotFoundError:
        raise FetchError(path, "file not found") from None
    except IsADirectoryError:
        raise FetchError(path, "is a directory, not a page") from None
    except OSError as e:
        raise FetchError(path, f"cannot read file: {e.strerror}") from None
    if not body.strip():
        raise FetchError(path, "file is empty")
    return FetchResult(url=path, final_url=path, status=200, body=body, content_type=None)


def _decoder(url: str, encoding: str) -> zlib._Decompress | None:
    if encoding in ("identity", ""):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")


def redirect_refusal(start: str, target: str, is_private: Callable[[str], bool]) -> str | None:
    """Why a redirect from ``start`` to ``target`` is refused, or None when it may be followed.

    A page on a public address may not send us to a private, loopback or link-local one
    (cloud metadata services, admin consoles on the local network). A page that is itself
    on a private address (an intranet or a test server) may redirect anywhere.
    """
    if target == start or is_private(urlsplit(start).hostname or ""):
        return None
    if is_private(urlsplit(target).hostname or ""):
        return f"refused redirect to a private or local address: {target}"
    return None


def _retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when.timestamp() - time.time(), cap))


def challenge_headers(headers: httpx.Headers) -> bool:
    """Whether a response's headers say it is a bot challenge (``cf-mitigated: challenge``)."""
    return any(value in headers.get(name, "").lower() for name, value in _CHALLENGE_HEADERS)


def looks_like_challenge(body: bytes, headers: httpx.Headers | None = None) -> bool:
    """Whether a response looks like a bot challenge or block page rather than the page asked
    for: a challenge header, or challenge-specific markup in the first 64 KB. Only a guess: for
    a 200 it is made only when no list could be read from the page (``collect``)."""
    if headers is not None and challenge_headers(headers):
        return True
    head = body[:65536].lower()
    return any(m in head for m in _CHALLENGE_MARKERS)


def strong_last_modified(last_modified: str | None, date: str | None) -> str | None:
    """``Last-Modified`` if it can serve as a validator, else None.

    With one-second resolution, a Last-Modified that is not at least one second before the
    response's ``Date`` is weak (RFC 9110 §8.8.2.2): the page may change again within that
    second and keep the same Last-Modified, and an ``If-Modified-Since`` would then hide the
    new version. Without a readable ``Date`` nothing shows that it is strong.
    """
    if not last_modified or not date:
        return None
    from email.utils import parsedate_to_datetime

    try:
        modified, sent = parsedate_to_datetime(last_modified), parsedate_to_datetime(date)
        gap = (sent - modified).total_seconds()
    except (TypeError, ValueError):
        return None
    return last_modified if gap >= 1 else None


def _describe(e: httpx.HTTPError) -> str:
    text = str(e) or type(e).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"TLS certificate verification failed ({text})"
    if isinstance(e, httpx.ConnectError):
        return f"connection failed: {text}"
    if isinstance(e, httpx.RemoteProtocolError):
        return f"connection broken: {text}"
    if isinstance(e, httpx.ReadError):
        return f"read error: {text}"
    return f"{type(e).__name__}: {text}"


# Not publicly routable, or reaching the local network or the machine itself, beyond what
# ``ipaddress`` calls private: carrier-grade NAT (a cloud metadata service answers at
# 100.100.100.200), benchmarking, and local-use NAT64.
_EXTRA_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "198.18.0.0/15",
        "fc00::/7",
        "fe80::/10",
        "64:ff9b:1::/48",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_private_address(address: str) -> bool:
    """True for an IP address on a private, loopback, link-local, shared or reserved network;
    an IPv4 address inside IPv6 (mapped, NAT64, 6to4 or Teredo) counts as that IPv4 address.
    False for a public address, and for text that is not an address."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return is_private_address(str(inner))
    if any(ip in net for net in _EXTRA_PRIVATE if net.version == ip.version):
        return True
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
    )


def is_private_host(host: str) -> bool:
    """True when the host is, or resolves to, a private, loopback or link-local address
    (``is_private_address``). A name is resolved here and again when connecting: the fetcher
    checks the address it connects to as well."""
    if not host:
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    literal = host.strip("[]").split("%")[0]
    try:
        ipaddress.ip_address(literal)
        return is_private_address(literal)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return any(is_private_address(str(i[4][0])) for i in infos)


# --- the connection pool's network backend: whole-attempt deadline, checked addresses -------------


class _Call(threading.local):
    """What the fetch running in this thread asks of its connections."""

    deadline: float | None = None  # time.monotonic() by which the attempt must be done
    peer_check: Callable[[str], bool] | None = None  # refuses these addresses; None: any address
    refused: str | None = None  # the private address a connection was refused to, if any

    def start(self, deadline: float, peer_check: Callable[[str], bool] | None) -> None:
        self.deadline, self.peer_check, self.refused = deadline, peer_check, None

    def end(self) -> None:
        self.deadline, self.peer_check = None, None

    def remaining(self, timeout: float | None) -> float | None:
        """``timeout`` shortened to what is left of the attempt; raises once nothing is."""
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the attempt ran out of time")
        return left if timeout is None else min(timeout, left)


_CALL = _Call()


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the attempt's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _CALL.remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _CALL.remaining(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _CALL.remaining(timeout)))

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, but a name is resolved here, each address checked, and the
    socket connected to a checked address (not resolved again), within the attempt's deadline."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        check = _CALL.peer_check
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in addresses if check is None or not check(a)]
        if not allowed:
            _CALL.refused = addresses[0] if addresses else host
            raise httpcore.ConnectError(f"refused: {host} is at a private or local address")
        error: Exception | None = None
        for address in allowed:
            try:
                stream = self._inner.connect_tcp(
                    address, port, _CALL.remaining(timeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                error = e
                continue
            return _DeadlineStream(stream)
        assert error is not None
        raise error

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _guarded_transport(concurrency: int) -> httpx.HTTPTransport:
    """httpx's transport over a connection pool that connects through ``_GuardedBackend``. httpx
    takes no network backend, so the pool it made is replaced by one that has ours (httpx 0.28
    sends every request through ``_pool``); retries: of the connection only."""
    context = httpx.create_ssl_context()
    transport = httpx.HTTPTransport(verify=context)
    transport._pool.close()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=context,
        max_connections=concurrency,
        max_keepalive_connections=concurrency,
        retries=1,
        network_backend=_GuardedBackend(),
    )
    return transport
