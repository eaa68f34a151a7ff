"""The review page's routes: each reads through a read-only connection and renders a template.

Only the window form writes: one short transaction through the same call the CLI's decision
commands use, then a redirect back to the window (so a reload never records it twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from policy_watch import queries
from policy_watch.config import Config
from policy_watch.diff import diff_pages
from policy_watch.errors import NotFoundError, PolicyWatchError
from policy_watch.store import Store
from policy_watch.store import reading as rd
from policy_watch.web import decisions, evidence
from policy_watch.web.feeds import atom
from policy_watch.web.meaning import Meanings
from policy_watch.web.security import Access
from policy_watch.web.templating import environment

PAGE_SIZE = 100
FEED_SETS = 50  # entries in a feed: the latest sets of changes
DASHBOARD_WINDOWS = 50  # the soonest open windows on the dashboard; /windows lists them all
NOTE_LIMIT = 4000
KINDS = (
    "added",
    "removed",
    "changed",
    "renamed",
    "country",
    "purpose",
    "section",
    "column_added",
    "column_removed",
)


def _utc_today() -> date:
    return datetime.now(UTC).date()


class Pages:
    def __init__(self, config: Config, access: Access, today: Callable[[], date] = _utc_today) -> None:
        self.config = config
        self.access = access
        self.today = today  # the date deadlines count from (the CLI's: today in UTC)
        self.env = environment()
        self.meanings = Meanings(config)
        # Vendors read through a browser (``render = "browser"`` in their config, where supported):
        # what is stored of them is the DOM the browser built, so its type alone cannot tell.
        self.rendered = {v.name for v in config.vendors if getattr(v, "render", None) == "browser"}

    def warm(self) -> None:
        """Work the first requests would otherwise do (run in a background thread at start-up)."""
        with self.reading() as store:
            self.meanings.warm(store)

    @contextmanager
    def reading(self) -> Iterator[Store]:
        store = rd.open_readonly(self.config.settings.database)
        try:
            yield store
        finally:
            store.close()

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        state = request.state
        html = self.env.get_template(template).render(
            user=getattr(state, "user", None),
            csrf_token=getattr(state, "csrf_token", ""),
            today=self.today(),
            rendered=self.rendered,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    # --- pages ----------------------------------------------------------------------------------------

    def dashboard(self, request: Request) -> Response:
        return self._windows_page(request, "dashboard.html", 1)

    def windows(self, request: Request) -> Response:
        return self._windows_page(request, "windows.html", max(1, _int_param(request, "page") or 1))

    def _windows_page(self, request: Request, template: str, page: int) -> Response:
        """Open windows, soonest first, a page at a time (the dashboard shows the first page)."""
        today = self.today()
        size = DASHBOARD_WINDOWS if template == "dashboard.html" else PAGE_SIZE
        with self.reading() as store:
            every = queries.windows(store, today)
            windows = every[(page - 1) * size : page * size]
            covered = rd.changes_of_windows(store, [w["id"] for w in windows])
            meanings = self.meanings.of_changes(store, [c for cs in covered.values() for c in cs])
            troubled, latest = [], []
            if template == "dashboard.html":
                troubled = [v for v in rd.vendor_summaries(store, today, troubled=True) if v.stale]
                latest = rd.changes(store, rd.ChangeFilter(), 20)
                meanings.update(self.meanings.of_changes(store, latest))
        risks = {
            wid: Meanings.risks(meanings[c.id] for c in cs if c.id in meanings) for wid, cs in covered.items()
        }
        return self.render(
            request,
            template,
            windows=windows,
            total=len(every),
            page=page,
            more=len(every) > page * size,
            troubled=troubled,
            latest=latest,
            risks=risks,
            meanings=meanings,
        )

    def vendors(self, request: Request) -> Response:
        with self.reading() as store:
            rows = rd.vendor_summaries(store, self.today())
        return self.render(request, "vendors.html", vendors=rows)

    def vendor(self, request: Request) -> Response:
        vendor_id = request.path_params["vendor_id"]
        at = _date_param(request, "at")
        with self.reading() as store:
            summary = self._vendor(store, vendor_id)
            meta, entries = queries.entries_at(store, summary.name, at)
            snapshots = queries.history(store, summary.name)
        extra_keys = list(dict.fromkeys(k for e in entries for k in e["extra"]))
        return self.render(
            request,
            "vendor.html",
            vendor=summary,
            meta=meta,
            entries=entries,
            at=at,
            extra_keys=extra_keys,
            snapshots=list(reversed(snapshots)),
        )

    def diff(self, request: Request) -> Response:
        vendor_id = request.path_params["vendor_id"]
        with self.reading() as store:
            summary = self._vendor(store, vendor_id)
            ids = [_int_param(request, k) for k in ("a", "b")]
            if any(i is None or rd.snapshot_vendor(store, i) != vendor_id for i in ids):
                raise HTTPException(400, "choose two snapshots of this vendor")
            old, new = (store.snapshots.get(int(i or 0)) for i in sorted(i or 0 for i in ids))
        changes = diff_pages(old.page(), new.page())
        return self.render(request, "diff.html", vendor=summary, old=old, new=new, changes=changes)

    def raw(self, request: Request) -> Response:
        with self.reading() as store:
            found = rd.evidence(store, request.path_params["snapshot_id"])
            if found is None:
                raise HTTPException(404, "no raw page is stored for this snapshot")
            body, _ = store.bodies.load(found.body_hash)
        return evidence.response(found, body)

    def feed(self, request: Request) -> Response:
        """An Atom feed of changes: all vendors (``/feed.atom``) or one."""
        vendor_id = request.path_params.get("vendor_id")
        base = str(request.base_url)
        with self.reading() as store:
            if vendor_id is None:
                title, page_url = "policy-watch: subprocessor changes", f"{base}changes"
            else:
                vendor = self._vendor(store, vendor_id)
                title, page_url = f"policy-watch: {vendor.name}", f"{base}vendors/{vendor_id}"
            sets = rd.change_sets(store, vendor_id, FEED_SETS)
        feed_id = (
            "urn:policy-watch:changes" + (f":vendor:{vendor_id}" if vendor_id is not None else "") + ":feed"
        )
        body = atom(title, feed_id, str(request.url), page_url, base, sets)
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    def changes(self, request: Request) -> Response:
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in KINDS:
            raise HTTPException(400, f"unknown kind (one of: {', '.join(KINDS)})")
        filters = rd.ChangeFilter(
            vendor=request.query_params.get("vendor") or None,
            kind=kind,
            since=_date_param(request, "since"),
            until=_date_param(request, "until"),
        )
        risk = request.query_params.get("risk") or ""
        to = (request.query_params.get("to") or "").strip().upper()
        if risk not in ("", "any") or len(to) > 40:
            raise HTTPException(400, "risk: leave it empty, or 'any' for changes that bring a transfer risk")
        page = max(1, _int_param(request, "page") or 1)
        offset = (page - 1) * PAGE_SIZE
        with self.reading() as store:
            if risk or to:
                rows, meanings = self.meanings.risky_changes(
                    store, filters, to or None, PAGE_SIZE + 1, offset
                )
            else:
                rows = rd.changes(store, filters, PAGE_SIZE + 1, offset)
                meanings = self.meanings.of_changes(store, rows)
            names = store.vendors.names()
        return self.render(
            request,
            "changes.html",
            rows=rows[:PAGE_SIZE],
            more=len(rows) > PAGE_SIZE,
            page=page,
            filters=filters,
            kinds=KINDS,
            vendor_names=names,
            meanings=meanings,
            risk="any" if to else risk,
            to=to,
        )

    def window(self, request: Request) -> Response:
        window_id = request.path_params["window_id"]
        with self.reading() as store:
            w = store.windows.get(window_id)
            if w is None:
                raise HTTPException(404, f"no objection window with id {window_id}")
            covered = rd.window_changes(store, window_id)
            meanings = self.meanings.of_changes(store, covered)
            history = decisions.history(store, window_id)
        return self.render(
            request,
            "window.html",
            window=w,
            changes=covered,
            history=history,
            actions=decisions.ACTIONS,
            meanings=meanings,
            risks=Meanings.risks(meanings.values()),
        )

    async def decide(self, request: Request) -> Response:
        form = await request.form()
        token = form.get("csrf")
        if not self.access.check_csrf(request.state.csrf_cookie, token if isinstance(token, str) else None):
            return HTMLResponse(
                "Refused: the form's security token is missing or stale. Reload the page and try again.",
                status_code=403,
            )
        action, note = form.get("action"), form.get("note")
        if not isinstance(action, str) or action not in decisions.ACTIONS:
            raise HTTPException(400, "choose acknowledge, object or accept")
        note_text = note.strip() if isinstance(note, str) and note.strip() else None
        if note_text is not None and len(note_text) > NOTE_LIMIT:
            raise HTTPException(400, f"the note is longer than {NOTE_LIMIT} characters")
        window_id = request.path_params["window_id"]
        from starlette.concurrency import run_in_threadpool

        try:
            await run_in_threadpool(
                decisions.record,
                self.config,
                window_id,
                action,
                request.state.user,
                note_text,
                datetime.now(UTC),
            )
        except NotFoundError as e:
            raise HTTPException(404, str(e)) from None
        except PolicyWatchError as e:
            raise HTTPException(503, f"the decision was not recorded: {e}") from None
        return RedirectResponse(f"/windows/{window_id}#history", status_code=303)

    def entity(self, request: Request) -> Response:
        name = (request.query_params.get("name") or "").strip()
        if len(name) > 200:
            raise HTTPException(400, "name: at most 200 characters")
        with self.reading() as store:
            found = self.meanings.who(store, name) if name else []
        return self.render(request, "entity.html", name=name, matches=found)

    # --- helpers --------------------------------------------------------------------------------------

    def _vendor(self, store: Store, vendor_id: int) -> rd.VendorSummary:
        found = rd.vendor_summaries(store, self.today(), vendor_id)
        if not found:
            raise HTTPException(404, f"no vendor with id {vendor_id}")
        return found[0]


def _date_param(request: Request, key: str) -> date | None:
    value = request.query_params.get(key)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{key}: expected a date YYYY-MM-DD") from None


def _int_param(request: Request, key: str) -> int | None:
    value = request.query_params.get(key)
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise HTTPException(400, f"{key}: expected a number")
    return int(value)
