"""The fetch-and-parse half of a check: each vendor's page fetched, hashed and parsed in a pool
of threads, handed on as it completes.

Fetching is waiting on distant servers, so threads of one process do it: a page's wait for its
server overlaps the others'. Recording happens on the caller's thread (``pipeline``, ``record``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from policy_watch.config import Vendor
from policy_watch.errors import BlockedError, BudgetError, FetchError, ParseError
from policy_watch.fetch import Fetcher, looks_like_challenge
from policy_watch.models import FetchResult, ParsedPage
from policy_watch.sources import Renderer, fetch_source
from policy_watch.store.records import VendorState, body_hash, pack_body

log = logging.getLogger(__name__)

# (position in the vendor list, outcome); with ``idle``, (-1, None) when nothing came for that long
Outcomes = Generator[tuple[int, "Fetched | Exception | None"], None, None]


@dataclass(frozen=True, slots=True)
class Fetched:
    """One vendor's page as fetched and parsed, or why it could not be."""

    vendor: Vendor
    state: VendorState
    result: FetchResult | None = None
    error: FetchError | None = None
    page: ParsedPage | None = None
    parse_error: ParseError | None = None
    same_body: bool = False
    packed: bytes | None = None  # a first body, compressed where it was fetched
    body_hash: str | None = None
    body_size: int | None = None  # what was fetched, when ``result.body`` is the stored copy read again

    @property
    def size(self) -> int:
        """The length of the body fetched (0 for a 304 or an error)."""
        if self.body_size is not None:
            return self.body_size
        return len(self.result.body) if self.result is not None else 0


def parse_page(body: bytes, **options: Any) -> ParsedPage:
    """The parse stage, imported on first use: a run where every page is unchanged never loads it."""
    from policy_watch.parse import parse_page as parse

    return parse(body, **options)


def fetch_and_parse(
    fetcher: Fetcher, vendor: Vendor, state: VendorState, renderer: Renderer | None = None
) -> Fetched:
    """One vendor's page fetched (or rendered) and parsed. What it hands on names the vendor's URL
    as it may be shown (``Vendor.shown_url``): a secret from the environment in the URL goes no further."""
    try:
        result = fetch_source(fetcher, vendor, state, renderer)
    except FetchError as e:
        e.vendor, e.url, e.cause = vendor.name, vendor.shown_url, vendor.hide(e.cause)
        return Fetched(vendor, state, error=e)
    got = _read(vendor, state, result)
    if got.parse_error is None or renderer is None or vendor.render or vendor.follow or vendor.is_file:
        return got
    if isinstance(got.parse_error, BudgetError):
        return got  # too costly to read: not worth building a tree to look for a script shell
    if not looks_like_shell(result):
        return got
    try:  # a script-built page: the list appears once a browser has run its scripts
        rendered = renderer.render(vendor.url)
    except FetchError as e:
        why = f"the page looks built by scripts and could not be rendered: {vendor.hide(e.cause)}"
        return Fetched(
            vendor, state, error=FetchError(vendor.shown_url, why, vendor=vendor.name, status=e.status)
        )
    return _read(vendor, state, rendered)


def _read(vendor: Vendor, state: VendorState, result: FetchResult) -> Fetched:
    """Hash a fetched body and parse it, unless it is the body on record."""
    if vendor.secrets:
        result = replace(result, url=vendor.shown_url, final_url=vendor.hide(result.final_url))
    bhash = None if result.not_modified else body_hash(result.body)
    if bhash is None or bhash == state.body_hash:
        return Fetched(vendor, state, result=result, same_body=True)
    packed = None if state.body_hash else pack_body(result.body)  # a first body is stored whole
    try:
        page = parse_page(
            result.body, content_type=result.content_type, rules=vendor.rules, source=vendor.shown_url
        )
    except ParseError as e:
        # No list: a bot challenge, going by the headers or the markup?
        if vendor.blocked == "auto" and (result.challenge or looks_like_challenge(result.body)):
            why = "blocked: the server sent a bot challenge page (no list on it)"
            blocked = BlockedError(vendor.shown_url, why, vendor=vendor.name, status=result.status)
            return Fetched(vendor, state, result=result, error=blocked)
        return Fetched(vendor, state, result=result, parse_error=e, packed=packed, body_hash=bhash)
    return Fetched(vendor, state, result=result, page=page, packed=packed, body_hash=bhash)


def looks_like_shell(result: FetchResult) -> bool:
    """Whether a page is an empty shell that scripts fill in (parse stage, imported on first use)."""
    from policy_watch.parse.links import looks_like_shell as shell

    return shell(result.body, result.content_type)


def in_threads(
    fetcher: Fetcher,
    vendors: Sequence[Vendor],
    states: Sequence[VendorState],
    workers: int,
    stop: threading.Event | None = None,
    idle: float | None = None,
    renderer: Renderer | None = None,
) -> Outcomes:
    """Fetch and parse in a thread pool; yield (position, outcome) as each completes, and
    (-1, None) after each ``idle`` seconds in which none did (the caller may act meanwhile).

    At most ``2 * workers`` vendors are in flight or waiting to be taken, so memory stays flat
    however many vendors there are. No new vendor starts once ``stop`` is set.
    """
    todo = iter(range(len(vendors)))
    inflight: dict[Future[Fetched], int] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pw-fetch") as pool:

        def submit_next() -> None:
            i = next(todo, None)
            if i is not None and not (stop is not None and stop.is_set()):
                inflight[pool.submit(fetch_and_parse, fetcher, vendors[i], states[i], renderer)] = i

        try:
            for _ in range(2 * max(1, workers)):
                submit_next()
            while inflight:
                done, _ = wait(inflight, timeout=idle, return_when=FIRST_COMPLETED)
                if not done:
                    yield -1, None
                for fut in sorted(done, key=inflight.__getitem__):  # in the vendors' order
                    i = inflight.pop(fut)
                    submit_next()
                    error = fut.exception()
                    yield i, (fut.result() if error is None else _as_exception(error))
        finally:  # the consumer stopped early: start nothing more
            for fut in inflight:
                fut.cancel()


def _as_exception(error: BaseException) -> Exception:
    if isinstance(error, Exception):
        return error
    raise error  # KeyboardInterrupt, SystemExit: not a vendor's problem
