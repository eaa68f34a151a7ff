"""Where a vendor's list is read from: its page as served, the document a link on it leads to
(``follow``), or its page as a browser renders it (``render = "browser"``).

Every kind of source gives a ``FetchResult`` whose body is the evidence kept for the snapshot:
the HTML served, the PDF's bytes, or the DOM a browser built. What comes after (parse, store,
diff, alerts) does not know which kind it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urlsplit

from policy_watch.browser import Browser, BrowserOptions
from policy_watch.config import Vendor
from policy_watch.errors import FetchError, ParseError
from policy_watch.fetch import Fetcher, FetchOptions, is_private_host, redirect_refusal
from policy_watch.models import FetchResult, ParsedPage
from policy_watch.store.records import VendorState


class Renderer(Protocol):
    """A browser that renders pages (``browser.Browser``)."""

    def render(self, url: str) -> FetchResult: ...


def fetch_source(
    fetcher: Fetcher, vendor: Vendor, state: VendorState, renderer: Renderer | None
) -> FetchResult:
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


@dataclass(frozen=True, slots=True)
class Reading:
    """What ``policy-watch parse`` shows: the page read, how, and the setting that would help."""

    result: FetchResult
    page: ParsedPage
    rendered: bool  # read from the DOM a browser built
    hint: str | None = None

    @property
    def how(self) -> str:
        return (
            f"{self.page.reader}, from the page as a browser rendered it"
            if self.rendered
            else self.page.reader
        )


def read_once(source: str, vendor: Vendor | None, fetch: FetchOptions, browser: BrowserOptions) -> Reading:
    """Read one page as a run would (``vendor``'s settings, or none), storing nothing."""
    from policy_watch.parse import parse_page

    rules = vendor.rules if vendor else None
    with Fetcher(fetch) as fetcher, Browser(browser) as renderer:
        if vendor is not None:
            source = vendor.url
            result = fetch_source(fetcher, vendor, _NO_STATE, renderer)
        else:
            result = fetcher.fetch(source)
        rendered = bool(vendor and vendor.render)
        try:
            page = parse_page(result.body, content_type=result.content_type, rules=rules, source=source)
        except ParseError:
            if rendered or (vendor and vendor.follow) or not _is_web(source):
                raise
            from policy_watch.parse.links import looks_like_shell

            if not looks_like_shell(result.body, result.content_type):
                raise
            result = renderer.render(source)
            page = parse_page(result.body, content_type=result.content_type, rules=rules, source=source)
            hint = (
                'the page is built by scripts: policy-watch renders it by itself; render = "browser" '
                "in its [[vendors]] table skips the plain request first"
            )
            return Reading(result, page, rendered=True, hint=hint)
    return Reading(result, page, rendered=rendered)


def _is_web(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


_NO_STATE = VendorState(
    id=0, name="", etag=None, last_modified_header=None, body_hash=None, consecutive_failures=0, failing=False
)
