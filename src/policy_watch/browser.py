"""Render pages that scripts build, with a headless Chromium: the only module that imports Playwright.

One browser per run, started on the first page that needs it and reused:
a vendor that needs no browser never starts one. Playwright drives it from one thread of its own
with an event loop; any thread may call ``render``, which waits for its page. At most
``pages`` pages render at once, each in a tab of its own: a page in a browser context of its
own, kept open and reused from one vendor to the next (a new context and page cost a new
renderer process each time, which was most of a page's CPU). Between two vendors a tab is
cleared: with the page's scripts stopped it moves to an empty page of the page's origin (made
by the fetch guard, never fetched), so the page's own pagehide and unload handlers have run
before that origin's session storage is cleared; then to about:blank. Its cookies and permissions
are cleared, and so is every other kind of storage (local storage, IndexedDB, cache storage, file
systems) of every origin the page reached, and the tab's ``window.name``; the JavaScript heap is
collected. A page whose frames showed documents of more than one origin (a move to another
origin, a frame of another site in a renderer of its own) leaves session storage the tab cannot
reach: its tab is replaced. What a tab does not clear is its renderer process, its HTTP cache
and its history (the next vendor's page cannot read them through any web API, but a timing side
channel on the cache remains). A tab that crashed, was
closed, timed out or failed in the browser is closed and replaced, never reused. Each page gets:

- the fetch policy on every request the page makes: only http(s), and no loopback, private,
  link-local or metadata address unless it is the vendor page's own host and port;
  WebSockets, downloads, service workers and permission prompts refused;
- a time limit per page and caps on its requests and on the size of the DOM;
- a wait for the content to settle: no request in flight and no DOM change for ``quiet``
  seconds, or, for a page that keeps polling, no DOM change for ``STABLE`` seconds whenever
  no request is in flight. A page whose DOM never stops changing is an error, not a half-built
  list.

Chromium is Debian's (``apt-get install chromium``) or ``settings.browser``; nothing is downloaded.
A browser that crashed is started again for the next page; one that hangs costs its pages
their time limit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from policy_watch.errors import BlockedError, FetchError
from policy_watch.fetch import is_private_host
from policy_watch.models import FetchResult

log = logging.getLogger(__name__)

CHROMIUM_PACKAGE = "chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # as root (containers, CI) Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--mute-audio",
    # Fewer processes, for memory: GPU compositing and the network service inside the browser
    # process, no spare renderer kept waiting, no omnibox-popup WebUI renderer per context
    # (Chromium 156 starts one for each, and it grows with every navigation), renderers capped
    # (see benchmarks/README.md). This --disable-features list replaces Playwright's own (the last
    # one given counts), which turns third-party storage partitioning off: left on here, a frame
    # of another site keeps its storage apart for each site that embeds it.
    "--in-process-gpu",
    "--enable-features=NetworkServiceInProcess2",
    "--disable-features=SpareRendererForSitePerProcess,MultipleSpareRPHs,Translate,MediaRouter,OptimizationHints,"
    "WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup",
    "--renderer-process-limit=4",
)
NODE_OPTIONS = "--max-semi-space-size=1"  # for Playwright's driver (MB per semi-space)
STABLE = 2.0  # seconds without a DOM change that settle a page whose requests never stop
MAX_REQUESTS = 400  # per page
_POLL = 0.1
_WATCH_MUTATIONS = """
window.__pwChanged = performance.now();
new MutationObserver(() => { window.__pwChanged = performance.now(); })
  .observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""
_CALM = "performance.now() - (window.__pwChanged || 0)"  # ms since the DOM last changed


@dataclass(frozen=True, slots=True)
class BrowserOptions:
    executable: str = "/usr/bin/chromium"
    pages: int = 3  # rendered at once
    timeout: float = 20.0  # seconds per page, from navigation to the settled DOM
    max_bytes: int = 10 * 1024 * 1024  # the rendered DOM
    user_agent: str | None = None
    quiet: float = 0.4  # seconds with no request in flight and no DOM change
    launch_timeout: float = 30.0


@dataclass
class _Traffic:
    """One page's requests: which are in flight, how many were made, which were refused, and the
    origins it reached (whose storage is cleared before its tab serves another vendor)."""

    inflight: set[Any] = field(default_factory=set)
    made: int = 0
    refused: list[str] = field(default_factory=list)
    origins: set[str] = field(default_factory=set)
    documents: set[str] = field(default_factory=set)  # the web origins (http, https) its frames showed
    last: float = field(default_factory=time.monotonic)  # when a request last started or ended

    def start(self, request: Any) -> None:
        self.inflight.add(request)
        self.last = time.monotonic()

    def navigated(self, frame: Any) -> None:
        if (origin := _web_origin(frame.url)) is not None:
            self.documents.add(origin)

    def end(self, request: Any) -> None:
        if request in self.inflight:  # a late event of the tab's previous page counts for nothing
            self.inflight.discard(request)
            self.last = time.monotonic()


@dataclass(eq=False)
class _Tab:
    """A page in a context of its own, kept open and reused from one vendor to the next."""

    browser: Any
    context: Any
    page: Any
    cdp: Any
    url: str = ""  # the vendor page it renders now
    traffic: _Traffic = field(default_factory=_Traffic)
    broken: bool = False  # crashed, closed or left in an unknown state: closed, never reused

    def usable(self, browser: Any) -> bool:
        return (
            not self.broken
            and self.browser is browser
            and browser.is_connected()
            and not self.page.is_closed()
        )


class Browser:
    """A headless Chromium shared by the threads of a run. Use as a context manager."""

    def __init__(self, options: BrowserOptions | None = None) -> None:
        self.options = options or BrowserOptions()
        self.started = 0  # browsers launched (a crash makes it more than one)
        self.tabs = 0  # tabs opened (one per slot, and one for each tab that had to be replaced)
        self.refused: list[str] = []  # requests refused by the fetch policy, over the run
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._playwright: Any = None
        self._browser: Any = None
        self._launching: asyncio.Lock | None = None
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Tab] = []  # open tabs waiting for a page
        self._recycling: set[asyncio.Future[None]] = set()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- any thread -------------------------------------------------------------------------------

    def render(self, url: str) -> FetchResult:
        """The page's DOM once its scripts have built it; FetchError (or BlockedError) otherwise."""
        self._check_executable(url)
        loop = self._event_loop()
        future = asyncio.run_coroutine_threadsafe(self._render(url), loop)
        # The page's own limit runs inside; this one catches a loop that stopped answering.
        wait = self.options.timeout + self.options.launch_timeout + 15
        try:
            return future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise FetchError(url, f"the browser did not answer within {wait:g} s") from None

    @property
    def idle_tabs(self) -> int:
        """Tabs cleared and waiting for a page."""
        return len(self._idle)

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=15)
        except Exception as e:  # a browser that will not close is killed with its driver below
            log.warning("the browser did not close cleanly: %r", e)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)

    def _check_executable(self, url: str) -> None:
        exe = self.options.executable
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise FetchError(
                url,
                f"this page needs a browser, and Chromium was not found at {exe}: install Debian's "
                f"{CHROMIUM_PACKAGE!r} package (apt-get install {CHROMIUM_PACKAGE}) or point "
                "settings.browser at a Chromium",
            )

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="pw-browser", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    # --- the browser's thread ---------------------------------------------------------------------

    async def _shutdown(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        if self._recycling:
            await asyncio.wait(self._recycling, timeout=5)
        self._idle.clear()  # their contexts close with the browser
        if browser is not None:
            try:
                await asyncio.wait_for(browser.close(), 10)
            except Exception as e:
                log.debug("closing the browser: %r", e)
        if playwright is not None:
            await asyncio.wait_for(playwright.stop(), 10)

    async def _launched(self, url: str) -> Any:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright

        if self._launching is None:
            self._launching = asyncio.Lock()
        async with self._launching:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._browser is not None:  # it crashed: start another for this page and the next
                log.warning("the browser was lost; starting it again")
                self._browser = None
            if self._playwright is None:
                self._playwright = await _start_driver(async_playwright())
            o = self.options
            try:
                self._browser = await asyncio.wait_for(
                    self._playwright.chromium.launch(
                        executable_path=o.executable,
                        args=list(CHROMIUM_ARGS),
                        headless=True,
                        timeout=o.launch_timeout * 1000,
                        handle_sigint=False,
                        handle_sigterm=False,
                        handle_sighup=False,
                    ),
                    o.launch_timeout + 5,
                )
            except (PlaywrightError, TimeoutError) as e:
                why = _first_line(e) or f"no answer within {o.launch_timeout:g} s"
                raise FetchError(url, f"the browser {o.executable} did not start: {why}") from None
            self.started += 1
            return self._browser

    async def _render(self, url: str) -> FetchResult:
        from playwright.async_api import Error as PlaywrightError

        if self._slots is None:
            self._slots = asyncio.Semaphore(self.options.pages)
        await self._slots.acquire()
        tab: _Tab | None = None
        try:
            browser = await self._launched(url)
            start = time.monotonic()
            opened: list[_Tab] = []

            async def visit() -> dict[str, Any]:
                opened.append(await self._tab(browser))
                return await self._visit(opened[0], url)

            try:
                try:
                    result = await asyncio.wait_for(visit(), self.options.timeout)
                finally:
                    tab = opened[0] if opened else None
            except TimeoutError:
                if tab is not None:
                    tab.broken = True  # a page stopped mid-way is not trusted with the next vendor
                raise FetchError(
                    url, f"the page did not finish loading or settle within {self.options.timeout:g} s"
                ) from None
            except PlaywrightError as e:
                if tab is not None:
                    tab.broken = True
                if not browser.is_connected():
                    raise FetchError(
                        url, f"the browser crashed while rendering the page ({_first_line(e)})"
                    ) from None
                raise FetchError(url, f"browser: {_first_line(e)}") from None
            except FetchError:  # the page answered (an HTTP error, too large): the tab is sound
                raise
            except BaseException:  # cancelled, or anything unforeseen: the tab is not trusted again
                if tab is not None:
                    tab.broken = True
                raise
            return FetchResult(**{**result, "duration_ms": int((time.monotonic() - start) * 1000)})
        finally:
            if tab is None:
                self._slots.release()
            else:  # the caller has its page; the tab is cleared for the next vendor meanwhile
                task = asyncio.ensure_future(self._recycle(tab))
                self._recycling.add(task)
                task.add_done_callback(self._recycling.discard)

    async def _tab(self, browser: Any) -> _Tab:
        """An idle tab of this browser, or a new one; a broken tab is closed, never reused."""
        while self._idle:
            tab = self._idle.pop()
            if tab.usable(browser):
                try:  # a renderer that died while the tab waited has not always said so yet
                    await asyncio.wait_for(tab.page.evaluate("0"), 5)
                    return tab
                except Exception as e:
                    log.debug("a tab's page no longer answers: %r", e)
            await _close(tab)
        o = self.options
        context = await browser.new_context(
            accept_downloads=False, service_workers="block", permissions=[], user_agent=o.user_agent
        )
        try:
            page = await context.new_page()
            tab = _Tab(browser, context, page, await context.new_cdp_session(page))
            await context.route("**/*", lambda route: self._guard(route, tab))
            await context.route_web_socket("**/*", _refuse_socket)
            await context.add_init_script(_WATCH_MUTATIONS)
        except BaseException:
            await _close(_Tab(browser, context, None, None, broken=True))
            raise
        self.tabs += 1
        page.on("request", lambda request: tab.traffic.start(request))
        page.on("requestfinished", lambda request: tab.traffic.end(request))
        page.on("requestfailed", lambda request: tab.traffic.end(request))
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
        page.on("framenavigated", lambda frame: tab.traffic.navigated(frame))
        page.on("crash", lambda _: setattr(tab, "broken", True))
        page.on("close", lambda _: setattr(tab, "broken", True))
        context.on("page", lambda other: asyncio.ensure_future(other.close()))  # popups: closed at once
        return tab

    async def _recycle(self, tab: _Tab) -> None:
        """Clear a tab for the next vendor: away from the page, then the cookies, permissions,
        storage of every origin the page reached and window name, and a garbage collection. A tab
        that cannot be cleared, or whose browser was replaced, is closed."""
        assert self._slots is not None
        try:
            if not tab.broken:
                try:
                    await asyncio.wait_for(self._clear(tab), 5)
                except Exception as e:
                    log.debug("clearing a tab: %r", e)
                    tab.broken = True
            if tab.broken or self._browser is not tab.browser:
                await _close(tab)
            else:
                self._idle.append(tab)
        finally:
            self._slots.release()

    async def _clear(self, tab: _Tab) -> None:
        traffic = tab.traffic
        tab.url = ""  # from now on the guard refuses the page's requests
        await _clear_session_storage(tab, traffic)
        tab.traffic = _Traffic()
        await tab.page.evaluate("window.name = ''")  # the tab's name outlives its pages
        await tab.context.clear_cookies()
        await tab.context.clear_permissions()
        for origin in traffic.origins:
            await tab.cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
        await tab.cdp.send("HeapProfiler.collectGarbage")

    async def _visit(self, tab: _Tab, url: str) -> dict[str, Any]:
        o = self.options
        tab.url, tab.traffic = url, _Traffic()
        traffic, page = tab.traffic, tab.page
        response = await page.goto(url, wait_until="domcontentloaded", timeout=o.timeout * 1000)
        if response is None:
            raise FetchError(url, "the browser got no response for the page")
        status = response.status
        if status >= 400:
            if status in (401, 403):
                raise BlockedError(
                    url, f"blocked: HTTP {status} (bot challenge or access denied)", status=status
                )
            raise FetchError(url, f"HTTP {status} {response.status_text}".strip(), status=status)
        await _settle(page, traffic, o.quiet)
        html = await page.content()
        final = page.url
        body = html.encode("utf-8")
        if len(body) > o.max_bytes:
            raise FetchError(url, f"rendered page too large: {len(body)} bytes (limit {o.max_bytes})")
        self.refused.extend(traffic.refused)
        return {
            "url": url,
            "final_url": final,
            "status": status,
            "body": body,
            "content_type": "text/html; charset=utf-8",
        }

    async def _guard(self, route: Any, tab: _Tab) -> None:
        """Let a request of the tab's page through only where the fetch policy allows it."""
        target, page_url, traffic = route.request.url, tab.url, tab.traffic
        parts = urlsplit(target)
        if not page_url and parts.path == _CLEARING_PATH and route.request.is_navigation_request():
            await route.fulfill(status=200, content_type="text/html", body="<!doctype html>")
            return  # the empty page a tab is cleared from: made here, never fetched
        if parts.scheme in ("data", "blob"):
            await route.continue_()
            return
        refused = not page_url or parts.scheme not in ("http", "https") or traffic.made >= MAX_REQUESTS
        if not refused and parts.netloc.lower() != urlsplit(page_url).netloc.lower():
            loop = asyncio.get_running_loop()
            refused = await loop.run_in_executor(None, is_private_host, parts.hostname or "")
        if refused:
            traffic.refused.append(target)
            log.info("refused a request of %s to %s", page_url or "a cleared tab", target)
            await route.abort("blockedbyclient")
            return
        traffic.made += 1
        traffic.origins.add(f"{parts.scheme}://{parts.netloc.lower()}")
        await route.continue_()


async def _start_driver(manager: Any) -> Any:
    """Start Playwright's driver (Node.js) with a smaller young generation: less memory over a long
    run, for no measured loss of speed (benchmarks/bench_sources.py). Playwright passes the driver
    a copy of this process's environment, so NODE_OPTIONS is set only while the driver starts."""
    before = os.environ.get("NODE_OPTIONS")
    os.environ["NODE_OPTIONS"] = f"{before or ''} {NODE_OPTIONS}".strip()
    try:
        return await manager.start()
    finally:
        if before is None:
            os.environ.pop("NODE_OPTIONS", None)
        else:
            os.environ["NODE_OPTIONS"] = before


async def _clear_session_storage(tab: _Tab, traffic: _Traffic) -> None:
    """Session storage belongs to the tab and the origin, and only a document of that origin
    reaches it (``Storage.clearDataForOrigin`` leaves it). With the page's scripts stopped, the
    tab moves to an empty page of the origin, made by the guard and never fetched: the page's
    own pagehide and unload handlers run as it is left, and what they write is cleared after
    them; then about:blank. A page whose frames showed more than one origin (a frame of another
    site, a move to another origin) is not cleared but replaced (raises): the storage of an
    origin it left, or of a frame of another site (partitioned by the top-level site, in a
    renderer of its own), is out of this tab's reach."""
    await tab.cdp.send("Emulation.setScriptExecutionDisabled", {"value": True})
    if len(traffic.documents) == 1:
        await tab.page.goto(next(iter(traffic.documents)) + _CLEARING_PATH)
    if len(traffic.documents) > 1:  # before, or a document of another origin came as the page was left
        raise _Unclearable(f"its frames showed {len(traffic.documents)} origins")
    if traffic.documents:
        main = (await tab.cdp.send("Page.getFrameTree"))["frameTree"]["frame"]["id"]
        key = await tab.cdp.send("Storage.getStorageKeyForFrame", {"frameId": main})
        await tab.cdp.send(
            "DOMStorage.clear", {"storageId": {"storageKey": key["storageKey"], "isLocalStorage": False}}
        )
    await tab.page.goto("about:blank")
    await tab.cdp.send("Emulation.setScriptExecutionDisabled", {"value": False})


_CLEARING_PATH = "/.policy-watch-clearing"  # the empty page a tab's session storage is cleared from


class _Unclearable(Exception):
    """A tab that cannot be cleared for the next vendor."""


def _web_origin(url: str) -> str | None:
    """scheme://host[:port] of an http(s) URL; None for about:blank, data: and the like."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


async def _close(tab: _Tab) -> None:
    try:
        await asyncio.wait_for(tab.context.close(), 5)
    except Exception as e:
        log.debug("closing a tab's context: %r", e)


async def _refuse_socket(socket: Any) -> None:
    await socket.close()


async def _settle(page: Any, traffic: _Traffic, quiet: float) -> None:
    """Wait until nothing loads and nothing changes for ``quiet`` seconds (or nothing changes
    for ``STABLE`` seconds, between the requests of a page that polls); the caller's time limit
    ends a page that never settles. The page says how long its DOM has been calm; between two
    looks this sleeps until the earliest moment the page could be settled."""
    while True:
        calm = await page.evaluate(_CALM) / 1000
        if traffic.inflight:
            await asyncio.sleep(_POLL)
            continue
        idle = time.monotonic() - traffic.last
        if calm >= quiet and (idle >= quiet or calm >= STABLE):
            return
        wait = max(quiet - calm, min(quiet - idle, STABLE - calm))
        await asyncio.sleep(min(max(wait, 0.01), STABLE))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
