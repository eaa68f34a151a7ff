"""Where a vendor's list is read from: its page as served, the document a link on it leads to
(``follow``), or its page as a browser renders it (``render = "browser"``).

Every kind of source gives a ``FetchResult`` whose body is the evidence kept for the snapshot:
the HTML served, the PDF's bytes, or the DOM a browser built. What comes after (parse, store,
diff, alerts) does not know which kind it was.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from policy_watch.config import Vendor
from policy_watch.errors import FetchError
from policy_watch.fetch import Fetcher, is_private_host, redirect_refusal
from policy_watch.models import FetchResult
from policy_watch.store.records import VendorState


class Renderer(Protocol):
    """A browser that renders pages (``browser.Browser``)."""

    def render(self, url: str) -> FetchResult: ...


def fetch_source(fetcher: Fetcher, vendor: Vendor, state: VendorState, renderer: Renderer | None) -> FetchResult:
    """The vendor's document, fetched or rendered; FetchError when it cannot be had."""
    if vendor.render == "browser":
        if renderer is None:
            raise FetchError(vendor.url, "this vendor is rendered by a browser, and none was given")
        return renderer.render(vendor.url)  # every run: an unchanged shell says nothing of its data
    if vendor.follow:
        return _follow(fetcher, vendor, state, vendor.follow)
    return fetcher.fetch(vendor.url, etag=state.etag, last_modified=state.last_modified_header)


def _follow(fetcher: Fetcher, vendor: Vendor, state: VendorState, text: str) -> FetchResult:
    """The page in full (its links may change while the document stays), then the document behind
    the link, conditionally: the validators on record are the document's."""
    from policy_watch.parse.links import find_link

    page = fetcher.fetch(vendor.url)
    target = find_link(page.body, page.content_type, text, page.final_url)
    if target is None:
        raise FetchError(vendor.url, f"no link whose text or address contains {text!r} (follow)")
    refused = redirect_refusal(vendor.url, target, is_private_host)  # a link is followed as a redirect is
    if refused:
        raise FetchError(vendor.url, refused.replace("redirect", "link"))
    try:
        document = fetcher.fetch(target, etag=state.etag, last_modified=state.last_modified_header)
    except FetchError as e:
        raise FetchError(vendor.url, f"the linked document {target}: {e.cause}", status=e.status) from None
    return replace(document, url=vendor.url, final_url=document.final_url)
