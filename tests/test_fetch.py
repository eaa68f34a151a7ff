"""The fetcher against a real local server: conditional requests and connection reuse."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from pwtest import ZENDESK, PageServer

from policy_watch import fetch
from policy_watch.errors import FetchError
from policy_watch.fetch import Fetcher, FetchOptions


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
def fresh_tls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ssl.SSLContext]]:
    """This process's certificate store, not loaded yet (it is loaded once per process)."""
    loaded: list[ssl.SSLContext] = []
    monkeypatch.setattr(fetch, "_TLS", loaded)
    yield loaded


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


def test_plain_http_never_loads_the_certificate_store(pages: PageServer, fresh_tls: list[ssl.SSLContext]) -> None:
    """Loading it costs CPU time; an HTTP-only run does without."""
    pages.serve("/p", (ZENDESK / "v1.html").read_bytes())
    with Fetcher(FetchOptions(concurrency=1, per_host=1)) as f:
        assert f.fetch(pages.url("/p")).status == 200
    assert fresh_tls == []


def test_https_is_verified_against_the_certificate_store(
    https_pages: tuple[PageServer, Path], pages: PageServer, fresh_tls: list[ssl.SSLContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    server, ca_file = https_pages
    body = (ZENDESK / "v1.html").read_bytes()
    server.serve("/p", body)
    with Fetcher(FetchOptions(concurrency=1, per_host=1, retries=0)) as f, pytest.raises(FetchError, match="certif"):
        f.fetch(server.url("/p"))  # a certificate nobody vouches for
    assert fresh_tls, "HTTPS loaded the store"

    fresh_tls.clear()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # as httpx reads it: trust the test authority
    pages.serve("/go", b"", status=301, Location=server.url("/p"))  # HTTP redirecting to HTTPS
    with Fetcher(FetchOptions(concurrency=1, per_host=1, retries=0)) as f:
        direct = f.fetch(server.url("/p"))
        moved = f.fetch(pages.url("/go"))
    assert direct.body == body and moved.body == body and moved.final_url == server.url("/p")
