"""The fetcher against a real local server: conditional requests and connection reuse."""

from __future__ import annotations

from pwtest import ZENDESK, PageServer

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
