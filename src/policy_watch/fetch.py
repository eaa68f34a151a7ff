"""Fetch vendor pages with httpx: polite, bounded, and explicit about every failure.

The only module that imports httpx. Shared sync ``httpx.HTTPTransport`` connection pools (one
for HTTP, one for HTTPS) serve a thread pool (measured faster than AsyncClient for our load);
per-host semaphores keep us polite. Requests go to the transport directly: we follow redirects
ourselves, and ``httpx.Client``'s request building and cookie jar cost about 0.4 ms a request (a
fifth of a first run's CPU time per page). Cookies a server sets while redirecting are still sent
on along that chain of redirects, and on the retries of that page; no cookie passes from one
page to another. HTTPS certificates are checked against certifi's bundle, or the file or folder
that ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name (a company's own authority, say).
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
from urllib.parse import urljoin, urlsplit

import httpx

from policy_watch.errors import BlockedError, FetchError
from policy_watch.models import FetchResult

HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")
PAGE_TYPES = (*HTML_TYPES, "application/pdf")  # what the parser reads
_RETRY_STATUS = {429, 500, 502, 503, 504}
_BLOCK_MARKERS = (
    b"just a moment...",
    b"checking your browser",
    b"cf-challenge",
    b"cf_chl_",
    b"access denied",
    b"attention required!",
    b"please enable cookies",
    b"captcha",
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
    """Fetch pages; thread-safe. Use as a context manager to close the pool."""

    def __init__(
        self,
        options: FetchOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        is_private: Callable[[str], bool] | None = None,
    ) -> None:
        self.options = o = options or FetchOptions()
        self._given = transport
        self._pools: dict[str, httpx.BaseTransport] = {}  # "http" and "https", each made on first use
        self._headers = [
            ("User-Agent", o.user_agent),
            ("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"),
            ("Accept-Encoding", "gzip, deflate"),
        ]
        connect = min(10.0, o.timeout)
        self._timeout = {"connect": connect, "read": o.timeout, "write": o.timeout, "pool": o.timeout}
        self._sleep = sleep
        self._is_private = is_private or is_private_host
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        if self._given is not None:
            pools.append(self._given)
        for pool in pools:
            pool.close()

    def _transport(self, scheme: str) -> httpx.BaseTransport:
        """The connection pool for ``scheme``. HTTPS gets the process's certificate store
        (``tls_context``); plain HTTP never loads it, and its pool is given a context with no
        certificates at all, so it could not complete a TLS handshake even by mistake."""
        if self._given is not None:
            return self._given
        pool = self._pools.get(scheme)
        if pool is None:
            context = tls_context() if scheme == "https" else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            n = self.options.concurrency
            limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
            with self._lock:
                pool = self._pools.get(scheme)
                if pool is None:  # retries: connect only
                    pool = self._pools[scheme] = httpx.HTTPTransport(verify=context, retries=1, limits=limits)
        return pool

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """Fetch one page. Raises FetchError (or BlockedError) with the cause."""
        if urlsplit(url).scheme not in ("http", "https"):
            return read_file(url, self.options.max_bytes)
        headers: list[tuple[str, str]] = []
        # A validator that is not ASCII (a server may send one) cannot be sent back: fetch in full.
        if etag and etag.isascii():
            headers.append(("If-None-Match", etag))
        if last_modified and last_modified.isascii():
            headers.append(("If-Modified-Since", last_modified))
        cookies = httpx.Cookies()  # this page's own: set while redirecting, kept for its retries
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                with self._host_slot(url):
                    result = self._follow(url, headers, cookies)
            except _Retry as r:
                attempt += 1
                if attempt > self.options.retries:
                    raise r.error from None
                self._sleep(r.delay if r.delay is not None else self._backoff(attempt))
                continue
            ms = int((time.monotonic() - start) * 1000)
            return replace(result, duration_ms=ms)

    def _backoff(self, attempt: int) -> float:
        base = self.options.backoff * (2.0 ** (attempt - 1))
        return base + random.uniform(0, base / 2)

    def _host_slot(self, url: str) -> threading.BoundedSemaphore:
        host = host_key(url)
        with self._lock:
            sem = self._hosts.get(host)
            if sem is None:
                sem = self._hosts[host] = threading.BoundedSemaphore(self.options.per_host)
            return sem

    def _follow(self, url: str, headers: list[tuple[str, str]], cookies: httpx.Cookies) -> FetchResult:
        current = url
        seen: set[str] = set()
        for _ in range(self.options.max_redirects + 1):
            if current in seen:
                raise FetchError(url, f"redirect loop at {current}")
            seen.add(current)
            refused = redirect_refusal(url, current, self._is_private)
            if refused:
                raise FetchError(url, refused)
            result, location = self._get_once(url, current, headers, cookies)
            if location is None:
                assert result is not None
                return result
            current = location
        raise FetchError(url, f"too many redirects (more than {self.options.max_redirects})")

    def _get_once(
        self, url: str, current: str, headers: list[tuple[str, str]], cookies: httpx.Cookies
    ) -> tuple[FetchResult | None, str | None]:
        response: httpx.Response | None = None
        try:
            request = httpx.Request("GET", current, headers=[*self._headers, *headers],
                                    extensions={"timeout": self._timeout})  # fmt: skip
            if cookies:
                cookies.set_cookie_header(request)
            response = self._transport(request.url.scheme).handle_request(request)
            response.request = request
            return self._answer(url, current, response, cookies)
        except httpx.TimeoutException as e:
            raise _Retry(FetchError(url, f"timed out ({type(e).__name__})"), None) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as e:
            raise _Retry(FetchError(url, _describe(e)), None) from None
        except httpx.HTTPError as e:
            raise FetchError(url, _describe(e)) from None
        except ValueError as e:  # a malformed Location ("http://[bad/") or header value
            raise FetchError(url, f"invalid request: {e}") from None
        finally:
            if response is not None:
                response.close()  # the connection goes back to the pool, or is dropped if unread

    def _answer(
        self, url: str, current: str, r: httpx.Response, cookies: httpx.Cookies
    ) -> tuple[FetchResult | None, str | None]:
        if "set-cookie" in r.headers:
            cookies.extract_cookies(r)
        if r.is_redirect and r.status_code != 304:
            loc = r.headers.get("location")
            if not loc:
                raise FetchError(url, f"HTTP {r.status_code} redirect without a Location header")
            target = urljoin(current, loc)
            if urlsplit(target).scheme not in ("http", "https"):
                raise FetchError(url, f"redirect to a non-HTTP URL: {target}")
            self._read_capped(url, r)  # finish the message so the connection can be reused
            return None, target
        if r.status_code == 304:
            r.read()  # the (empty) end of the message: without it the connection is not reused
            return self._result(url, current, r, b"", not_modified=True), None
        if r.status_code in _RETRY_STATUS:
            raise _Retry(
                FetchError(url, f"HTTP {r.status_code} {r.reason_phrase}", status=r.status_code),
                _retry_after(r.headers.get("retry-after"), self.options.max_retry_after),
            )
        body = self._read_capped(url, r)
        if r.status_code >= 400:
            if r.status_code in (401, 403) or _looks_blocked(body):
                raise BlockedError(
                    url, f"blocked: HTTP {r.status_code} (bot challenge or access denied)", status=r.status_code
                )
            raise FetchError(url, f"HTTP {r.status_code} {r.reason_phrase}", status=r.status_code)
        return self._result(url, current, r, body), None

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

    def _result(
        self, url: str, current: str, r: httpx.Response, body: bytes, *, not_modified: bool = False
    ) -> FetchResult:
        ctype = r.headers.get("content-type")
        if not not_modified:
            if not body.strip():
                raise FetchError(url, f"HTTP {r.status_code} with an empty body", status=r.status_code)
            mime = (ctype or "").split(";")[0].strip().lower()
            if mime and mime not in PAGE_TYPES:
                raise FetchError(url, f"not an HTML page or PDF: Content-Type {mime}", status=r.status_code)
            if len(body) < 40000 and _looks_blocked(body):  # a challenge page is small
                raise BlockedError(url, "blocked: the server sent a bot challenge page", status=r.status_code)
        return FetchResult(
            url=url,
            final_url=current,
            status=r.status_code,
            body=body,
            content_type=ctype,
            etag=r.headers.get("etag"),
            last_modified_header=r.headers.get("last-modified"),
            not_modified=not_modified,
        )


def host_key(url: str) -> str:
    """What ``per_host`` counts by: the URL's host and port."""
    return urlsplit(url).netloc.lower()


_TLS: list[ssl.SSLContext] = []
_TLS_LOCK = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The certificate store that HTTPS requests are verified against, loaded once per process
    on first use (about 40 ms of CPU: httpx's choice, certifi's bundle, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``). Worker processes forked after it was loaded share it."""
    with _TLS_LOCK:
        if not _TLS:
            _TLS.append(httpx.create_ssl_context())
        return _TLS[0]


def load_tls_for(urls: Iterable[str]) -> None:
    """Load the certificate store now if any of ``urls`` is HTTPS: called before forking
    workers, so that they inherit it instead of each loading its own."""
    if any(url[:8].lower() == "https://" for url in urls):
        tls_context()


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


def _looks_blocked(body: bytes) -> bool:
    head = body[:20000].lower()
    return any(m in head for m in _BLOCK_MARKERS) and b"<table" not in head


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


def is_private_host(host: str) -> bool:
    """True when the host is, or resolves to, a private, loopback or link-local address."""
    if not host:
        return False
    if host.lower() in ("localhost",) or host.lower().endswith(".localhost"):
        return True
    try:
        addrs = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        addrs = [ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos]
    return any(a.is_private or a.is_loopback or a.is_link_local or a.is_reserved for a in addrs)
