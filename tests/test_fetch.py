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
