"""The fetcher against a real local server: conditional requests and connection reuse."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pwtest import ZENDESK, PageServer, write_config, zendesk_page

from policy_watch import fetch
from policy_watch.config import Config, load_config
from policy_watch.errors import ConfigError, FetchError
from policy_watch.fetch import Fetcher, FetchOptions
from policy_watch.pipeline import run_check
from policy_watch.store import Store


def test_not_modified_and_redirect_keep_the_connection(pages: PageServer) -> None:
    pages.serve("/p", (ZENDESK / "v1.html").read_bytes(), ETag='"v1"')
    pages.serve("/old", b"moved", status=301, Location="/p")
    with Fetcher(FetchOptions(concurrency=1, per_host=1)) as f:
        first = f.fetch(pages.url("/p"))
        again = [f.fetch(pages.url("/p"), etag=first.etag) for _ in range(5)]
        moved = f.fetch(pages.url("/old"))
    assert first.status == 200 and first.etag == '"v1"'
    assert all(r.not_modified and r.status == 304 for r in again)
    assert moved.final_url == pages.url("/p") and moved.body == first.body
    assert len(pages.peers) == 8
    assert len(set(pages.peers)) == 1, "every request after the first reuses the same connection"


def test_a_cookie_set_while_redirecting_goes_along_that_chain_only(pages: PageServer) -> None:
    """Consent walls and bot checks set a cookie on a redirect and expect it back on the next hop;
    one vendor's cookies never reach another's page."""
    body = (ZENDESK / "v1.html").read_bytes()
    pages.serve("/gate", b"", status=302, Location="/list", Set_Cookie="consent=yes; Path=/")
    pages.serve("/list", body)
    pages.serve("/other", body)
    with Fetcher(FetchOptions(concurrency=1, per_host=1)) as f:
        through = f.fetch(pages.url("/gate"))
        other = f.fetch(pages.url("/other"))
    sent = {path: headers for method, path, headers in pages.requests if method == "GET"}
    assert through.final_url == pages.url("/list") and through.body == body
    assert sent["/list"].get("Cookie") == "consent=yes"
    assert "Cookie" not in sent["/gate"] and "Cookie" not in sent["/other"]
    assert other.body == body
    assert sent["/list"].get("User-Agent", "").startswith("policy-watch/")


def test_a_redirect_body_is_read_within_the_size_cap(pages: PageServer) -> None:
    """A redirect's body is read before the next hop (so its connection is reused), and within
    ``max_bytes`` like a page's: a small gzip body that inflates far past the cap is cut off."""
    import gzip

    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    pages.serve("/gate", bomb, status=302, Location="/p", Content_Encoding="gzip")
    pages.serve("/p", (ZENDESK / "v1.html").read_bytes())
    with (
        Fetcher(FetchOptions(concurrency=1, per_host=1, max_bytes=1024 * 1024)) as f,
        pytest.raises(FetchError, match=r"response too large: over 1048576 bytes"),
    ):
        f.fetch(pages.url("/gate"))
    assert [path for method, path, _ in pages.requests if method == "GET"] == ["/gate"]


def test_malformed_redirects_and_validators_are_fetch_errors_or_ignored(pages: PageServer) -> None:
    import pytest

    from policy_watch.errors import FetchError

    body = (ZENDESK / "v1.html").read_bytes()
    pages.serve("/bad-redirect", b"", status=302, Location="http://[bad/")
    pages.serve("/p", body)
    with Fetcher(FetchOptions(concurrency=1, per_host=1)) as f:
        with pytest.raises(FetchError, match="invalid request"):
            f.fetch(pages.url("/bad-redirect"))
        again = f.fetch(pages.url("/p"), etag='"café"', last_modified="Mon, 1 Jan 2024 00:00:00 GMT")
    assert again.status == 200 and again.body == body
    sent = [h for method, path, h in pages.requests if path == "/p"]
    assert "If-None-Match" not in sent[-1] and sent[-1].get("If-Modified-Since")


@pytest.fixture
def https_pages(tmp_path: Path) -> Iterator[tuple[PageServer, Path]]:
    """A real HTTPS server on 127.0.0.1, with a certificate from a test authority (its PEM file)."""
    import trustme

    ca = trustme.CA()
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_side)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = PageServer(tls=server_side)
    yield server, ca_file
    server.close()


def test_https_is_verified_against_the_certificate_store(
    https_pages: tuple[PageServer, Path], pages: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca_file = https_pages
    body = (ZENDESK / "v1.html").read_bytes()
    server.serve("/p", body)
    with (
        Fetcher(FetchOptions(concurrency=1, per_host=1, retries=0)) as f,
        pytest.raises(FetchError, match="certif"),
    ):
        f.fetch(server.url("/p"))  # a certificate nobody vouches for

    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # as httpx reads it: trust the test authority
    pages.serve("/go", b"", status=301, Location=server.url("/p"))  # HTTP redirecting to HTTPS
    with Fetcher(FetchOptions(concurrency=1, per_host=1, retries=0)) as f:
        direct = f.fetch(server.url("/p"))
        moved = f.fetch(pages.url("/go"))
    assert direct.body == body and moved.body == body and moved.final_url == server.url("/p")


class SecondResolutionServer:
    """A server like Python's http.server: ``Last-Modified`` to the second, and 304 to an
    ``If-Modified-Since`` that is not older than it. Its clock (``Date``) is set by the test."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.body = b""
        self.modified = self.date = "Wed, 02 Dec 2026 04:00:00 GMT"
        self.etag: str | None = None
        self.asked: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                from email.utils import parsedate_to_datetime

                outer.asked.append(dict(self.headers))
                since = self.headers.get("If-Modified-Since")
                fresh = since and parsedate_to_datetime(outer.modified) <= parsedate_to_datetime(since)
                if outer.etag:
                    fresh = self.headers.get("If-None-Match") == outer.etag
                self.send_response_only(304 if fresh else 200)  # no Date of its own
                self.send_header("Date", outer.date)
                self.send_header("Last-Modified", outer.modified)
                if outer.etag:
                    self.send_header("ETag", outer.etag)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", "0" if fresh else str(len(outer.body)))
                self.end_headers()
                if not fresh:
                    self.wfile.write(outer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/sub"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def second_server() -> Iterator[SecondResolutionServer]:
    server = SecondResolutionServer()
    yield server
    server.close()


def _check(config: Config) -> dict[str, str]:
    store = Store.open(config.settings.database)
    try:
        return {r.vendor: r.status for r in run_check(config, store, deliver_alerts=False).results}
    finally:
        store.close()


def test_a_new_version_within_the_second_of_last_modified_is_detected(
    tmp_path: Path, second_server: SecondResolutionServer
) -> None:
    """Last-Modified equal to Date is a weak validator (RFC 9110 §8.8.2.2): a page changed again
    within that second keeps it, and If-Modified-Since would be answered 304."""
    config = load_config(write_config(tmp_path, [("V", second_server.url())]))
    second_server.body = zendesk_page("v1")
    assert _check(config) == {"V": "baseline"}
    second_server.body = zendesk_page("v2")  # changed within the same second: same Last-Modified
    assert _check(config) == {"V": "changed"}
    assert all("If-Modified-Since" not in h for h in second_server.asked), second_server.asked


def test_last_modified_a_second_before_date_and_etags_stay_validators(
    tmp_path: Path, second_server: SecondResolutionServer
) -> None:
    config = load_config(write_config(tmp_path, [("V", second_server.url())]))
    second_server.body = zendesk_page("v1")
    second_server.date = "Wed, 02 Dec 2026 04:00:01 GMT"
    assert _check(config) == {"V": "baseline"}
    assert _check(config) == {"V": "unchanged"}
    assert second_server.asked[-1].get("If-Modified-Since") == second_server.modified
    second_server.date, second_server.etag = second_server.modified, '"v1"'  # weak date, but an ETag
    second_server.asked.clear()
    assert _check(config) == {"V": "unchanged"}  # a full answer: the stored validator was sent once more
    assert _check(config) == {"V": "unchanged"}
    assert second_server.asked[-1].get("If-None-Match") == '"v1"'
    assert "If-Modified-Since" not in second_server.asked[-1], second_server.asked[-1]


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("100.64.0.1", True),
        ("100.100.100.200", True),
        ("100.127.255.255", True),
        ("100.128.0.1", False),
        ("0.0.0.0", True),
        ("0.1.2.3", True),
        ("198.18.0.1", True),
        ("198.19.255.1", True),
        ("198.20.0.1", False),
        ("10.0.0.1", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("127.0.0.2", True),
        ("169.254.169.254", True),
        ("fc00::1", True),
        ("fd12:3456::1", True),
        ("fe80::1", True),
        ("fe80::1%eth0", True),
        ("[::1]", True),
        ("::", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("64:ff9b::7f00:1", True),
        ("64:ff9b::a9fe:a9fe", True),
        ("64:ff9b::6464:64c8", True),
        ("64:ff9b::5db8:d822", False),
        ("64:ff9b:1::1", True),
        ("2002:7f00:1::1", True),
        ("2002:5db8:d822::1", False),
        ("::ffff:93.184.216.34", False),
        ("93.184.216.34", False),
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("224.0.0.1", True),
        ("not an address", False),
        ("", False),
    ],
)
def test_private_address_classification(address: str, private: bool) -> None:
    assert fetch.is_private_address(address) is private


def test_vendor_blocked_key_is_validated(tmp_path: Path) -> None:
    path = write_config(tmp_path, [("V", "http://example.com/")], extra="")
    path.write_text(path.read_text() + 'blocked = "sometimes"\n')
    with pytest.raises(ConfigError, match=r"vendors\[1\]\.blocked: expected one of 'auto', 'never'"):
        load_config(path)
    path.write_text(path.read_text().replace('"sometimes"', '"never"'))
    assert load_config(path).vendors[0].blocked == "never"


def test_a_weak_last_modified_stored_earlier_is_dropped(
    tmp_path: Path, second_server: SecondResolutionServer
) -> None:
    """A database from before this rule may hold a weak Last-Modified: the next answer that does
    not confirm it as strong replaces it, so the change after it is seen."""
    import sqlite3

    config = load_config(write_config(tmp_path, [("V", second_server.url())]))
    second_server.body = zendesk_page("v1")
    assert _check(config) == {"V": "baseline"}
    with sqlite3.connect(config.settings.database) as db:  # as an earlier version stored it
        db.execute("update vendors set last_modified_header = ?", [second_server.modified])
    assert _check(config) == {"V": "unchanged"}  # answered 304 to it, once
    assert second_server.asked[-1].get("If-Modified-Since") == second_server.modified
    second_server.body = zendesk_page("v2")  # within the same second
    assert _check(config) == {"V": "changed"}
