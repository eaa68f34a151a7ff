"""One check of every vendor: fetch → parse → store → diff → alert, failure isolated per vendor.

Fetching and parsing run in a thread pool (``collect``), a bounded window of vendors at a
time; storing happens on the calling thread. Each vendor is recorded in
its own savepoint (a broken vendor never touches another's history, and its alerts are queued
with the changes they report); commits are batched, so a process killed mid-run loses at most
the last batch, which the next run checks again. Alerts do not wait for the end of the run: after
a commit, or when no vendor finished for ``ALERT_IDLE`` seconds, the batch ends and the alerts
recorded so far are sent (``_EarlyDelivery``), so one slow page holds back no other vendor's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from policy_watch import alerting, clock, render
from policy_watch.browser import Browser, BrowserOptions
from policy_watch.collect import Fetched, Outcomes, in_threads, parse_page
from policy_watch.config import Config, Vendor
from policy_watch.diff import diff_pages, is_suspect
from policy_watch.errors import FetchError, ParseError, PolicyWatchError
from policy_watch.fetch import Fetcher, FetchOptions
from policy_watch.meaning import transfers
from policy_watch.models import Change, ObjectionWindow, ParsedPage, ParseRules, VendorResult
from policy_watch.outbox import deliver, merge_digests
from policy_watch.store import PageRows, Store, StoredSnapshot, content_hash, page_rows

log = logging.getLogger(__name__)


def _parser_version() -> str:
    from policy_watch.parse import PARSER_VERSION

    return PARSER_VERSION


def reading_config(vendor: Vendor) -> str:
    """Fingerprint of how a vendor's page is read: the parser version and the vendor's parse rules
    (selectors, date_format). Stored with the vendor and with each snapshot; when it differs from
    the vendor's, the next run reads the page again even if the page did not change."""
    return _fingerprint(vendor.rules)


@functools.lru_cache(maxsize=4096)
def _fingerprint(rules: ParseRules | None) -> str:  # most vendors share None: computed once a run
    fields = dataclasses.asdict(rules) if rules is not None else {}
    text = json.dumps([_parser_version(), {k: v for k, v in fields.items() if v is not None}], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RunReport:
    run_id: str
    started: datetime
    results: list[VendorResult] = field(default_factory=list)
    delivered: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[VendorResult]:
        return [r for r in self.results if r.status in ("error", "suspect")]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    @property
    def changed(self) -> list[VendorResult]:
        return [r for r in self.results if r.status == "changed"]


def browser_options(config: Config) -> BrowserOptions:
    s = config.settings
    return BrowserOptions(
        executable=s.browser,
        pages=s.browser_pages,
        timeout=s.timeout,
        max_bytes=s.max_bytes,
        user_agent=s.user_agent,
        launch_timeout=max(10.0, s.timeout),
    )


def fetch_options(config: Config) -> FetchOptions:
    s = config.settings
    return FetchOptions(
        user_agent=s.user_agent,
        timeout=s.timeout,
        max_bytes=s.max_bytes,
        retries=s.retries,
        max_redirects=s.max_redirects,
        per_host=s.per_host,
        concurrency=s.concurrency,
    )


def run_check(
    config: Config,
    store: Store,
    fetcher: Fetcher | None = None,
    *,
    vendors: Sequence[Vendor] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_result: Callable[[VendorResult], None] | None = None,
    deliver_alerts: bool = True,
    stop: threading.Event | None = None,
) -> RunReport:
    """Check vendors once, queue alerts, then deliver everything pending.

    ``fetcher`` (or a new one built from the config) serves the thread pool that fetches and
    parses; no new vendor starts once ``stop`` is set.
    """
    report = RunReport(run_id=uuid.uuid4().hex[:12], started=now())
    todo = list(vendors if vendors is not None else config.vendors)
    by_name = store.vendors.states([(v.name, v.shown_url) for v in todo], report.started)
    states = [by_name[v.name] for v in todo]
    with ExitStack() as stack:
        idle = ALERT_IDLE if deliver_alerts else None
        if fetcher is None:
            fetcher = stack.enter_context(Fetcher(fetch_options(config)))
        browser = stack.enter_context(Browser(browser_options(config)))  # started by the first page to render
        workers = max(1, min(config.settings.concurrency, len(todo)))
        outcomes = in_threads(fetcher, todo, states, workers, stop, idle, browser)
        stack.callback(outcomes.close)  # an error while recording stops the fetching too
        early = _EarlyDelivery(config, store, now, report) if deliver_alerts else None
        while _record_outcomes(config, store, todo, outcomes, report, now, on_result, early):
            assert early is not None
            early.deliver()
    try:
        after_run(config, store, now(), report.run_id)
        with store.transaction():
            store.runs.record(
                report.run_id,
                report.started,
                now(),
                len(report.results),
                len(report.failed),
                len(report.changed),
            )
        if deliver_alerts:
            sent, report.pending = deliver(config, store, now, down=early.down if early else None)
            report.delivered += sent
    except PolicyWatchError as e:  # the vendors' results above are on record; say what failed after them
        report.errors.append(str(e))
    report.results.sort(key=lambda r: r.vendor.casefold())
    return report


ALERT_IDLE = 0.5  # seconds without a vendor done after which alerts already recorded are sent


class _EarlyDelivery:
    """Sends the alerts of vendors already recorded while the run goes on, so that one slow page
    delays no other vendor's alert. Only committed alerts are sent, outside any transaction (the
    outbox marks each 'sending' before it goes), so none is sent twice; a target that failed is
    left alone for the rest of the run, as in the final delivery."""

    def __init__(self, config: Config, store: Store, now: Callable[[], datetime], report: RunReport) -> None:
        self.config, self.store, self.now, self.report = config, store, now, report
        self.due = False  # a vendor recorded since the last delivery may have queued an alert
        self.down: set[str] = set()
        self.failed = False

    def note(self, got: Fetched | Exception, result: VendorResult) -> None:
        recovered = isinstance(got, Fetched) and (got.state.failing or got.state.consecutive_failures > 0)
        self.due = self.due or result.status in ("changed", "suspect", "error") or recovered

    def wanted(self) -> bool:
        return self.due and not self.failed

    def deliver(self) -> None:
        self.due = False
        try:
            sent, _ = deliver(self.config, self.store, self.now, down=self.down)
        except PolicyWatchError as e:  # the final delivery tries again and reports it
            log.warning("alerts not delivered during the run: %s", e)
            self.failed = True
            return
        self.report.delivered += sent


def _record_outcomes(
    config: Config,
    store: Store,
    todo: Sequence[Vendor],
    outcomes: Outcomes,
    report: RunReport,
    now: Callable[[], datetime],
    on_result: Callable[[VendorResult], None] | None,
    early: _EarlyDelivery | None,
) -> bool:
    """Record outcomes in one batch of transactions. Returns True, with everything recorded so far
    committed, when alerts are waiting to be sent and the caller should send them and call again
    (after a commit, or when no vendor came for a while); False when every outcome is recorded."""
    with store.batch() as tick:
        uncommitted: list[int] = []  # results whose writes the batch has not committed yet
        for i, got in outcomes:
            if got is None:  # no vendor done for a while: what was recorded may go out now
                if early is not None and early.wanted():
                    return True
                continue
            result = _settle(config, store, todo[i], got, now(), report.run_id)
            held = store.in_transaction  # else an error ended the batch: what it held is undone
            if not held:
                for k in uncommitted:
                    report.results[k] = _not_recorded(report.results[k])
                uncommitted.clear()
            report.results.append(result)
            committed = tick()
            if committed:
                uncommitted.clear()
            elif held:
                uncommitted.append(len(report.results) - 1)
            if on_result:
                on_result(result)
            if early is not None:
                early.note(got, result)
                if committed and early.wanted():
                    return True
    return False


def _settle(
    config: Config, store: Store, vendor: Vendor, got: Fetched | Exception, at: datetime, run_id: str
) -> VendorResult:
    """Record one vendor's outcome; whatever goes wrong stays with that vendor."""
    try:
        if isinstance(got, Exception):
            raise got
        return _record(config, store, got, at, run_id)
    except PolicyWatchError as e:
        return VendorResult(vendor.name, "error", error=vendor.hide(str(e)), detected_at=at)
    except Exception as e:
        if vendor.secrets:  # the traceback could show the URL
            log.error("unexpected error while checking %s: %s", vendor.name, vendor.hide(repr(e)))
        else:
            log.exception("unexpected error while checking %s", vendor.name)
        return VendorResult(
            vendor.name, "error", error=vendor.hide(f"{vendor.name}: internal error: {e!r}"), detected_at=at
        )


def _not_recorded(r: VendorResult) -> VendorResult:
    why = "not recorded: a database error undid this part of the run; it is checked again next run"
    return VendorResult(r.vendor, "error", error=f"{r.vendor}: {why}", detected_at=r.detected_at)


def after_run(config: Config, store: Store, now: datetime, run_id: str) -> None:
    """Reminders, expiry and digests: the parts of a run that concern every vendor."""
    with store.transaction():
        alerting.queue_reminders(config, store, now, run_id)
        store.windows.expire(now.date())
        merge_digests(config, store, now, run_id)
        _refresh_entity_names(config, store)


def _refresh_entity_names(config: Config, store: Store) -> None:
    """Keep the table SQL readers group companies by in step with the lists: the spellings it lacks
    are read and added; all of them again only when the alias rules changed."""
    from policy_watch.meaning import entities

    fingerprint = entities.fingerprint(config.aliases, config.transfers.places)
    rebuild, todo = store.entries.names_todo(fingerprint)
    if not todo and not rebuild:
        return
    table, places = entities.alias_table(config.aliases), transfers.rules(config.transfers).gazetteer
    idents = [(name, entities.identify(name, table, places)) for name in todo]
    store.entries.add_names([(name, i.company, i.key) for name, i in idents], fingerprint, rebuild=rebuild)


def _fetch_row(got: Fetched, at: datetime, outcome: str, error: str | None) -> dict[str, Any]:
    r = got.result
    final = r.final_url if r and r.final_url != got.vendor.shown_url else None
    return {
        "started_at": at,
        "url": None,
        "final_url": final,
        "status": (r.status if r else got.error.status if got.error else None),
        "duration_ms": r.duration_ms if r else None,
        "bytes": got.size,
        "outcome": outcome,
        "error": error,
    }


def _record(config: Config, store: Store, got: Fetched, at: datetime, run_id: str) -> VendorResult:
    v, state = got.vendor, got.state
    with store.transaction():
        if got.error is not None:
            store.vendors.record_fetch(state.id, _fetch_row(got, at, "error", got.error.cause))
            alerting.count_failure(config, store, state, got.error, at, run_id)
            return VendorResult(v.name, "error", error=str(got.error), detected_at=at)
        fingerprint = reading_config(v)
        notice = None
        if state.reading_config != fingerprint and state.latest_id is not None:  # read differently now
            notice = reread_baseline(config, store, v, state.id, fingerprint, at, state.body_hash)
        if got.same_body and state.reading_config != fingerprint and state.body_hash is not None:
            result = _new_body(config, store, _read_stored(store, got), at, run_id, fingerprint)
        elif got.same_body:
            result = _same_body(store, got, at)
        else:
            result = _new_body(config, store, got, at, run_id, fingerprint)
        if notice is not None:
            result = replace(result, notice=notice)
        outcome = result.status
        if got.same_body and result.status == "unchanged":
            outcome = "not_modified" if got.result and got.result.not_modified else "same_body"
        store.vendors.record_fetch(state.id, _fetch_row(got, at, outcome, result.error))
        if result.status == "error":
            assert got.result is not None
            cause = FetchError(v.shown_url, result.error or "unreadable page", vendor=v.name)
            alerting.count_failure(config, store, state, cause, at, run_id)
        elif state.failing or state.consecutive_failures:
            alerting.recovered(config, store, state, at, run_id)
        return result


def _read_stored(store: Store, got: Fetched) -> Fetched:
    """The vendor's page did not change, but how it is read did: read the stored copy again."""
    r, state = got.result, got.state
    assert r is not None and state.body_hash is not None
    body, ctype = store.bodies.load(state.body_hash)
    page, error = None, None
    try:
        page = parse_page(body, content_type=ctype, rules=got.vendor.rules, source=got.vendor.url)
    except ParseError as e:
        error = e
    result = replace(
        r,
        body=body,
        content_type=ctype,
        etag=r.etag or state.etag,
        last_modified_header=r.last_modified_header or state.last_modified_header,
    )
    return replace(
        got,
        result=result,
        page=page,
        parse_error=error,
        same_body=False,
        packed=None,
        body_hash=state.body_hash,
        body_size=got.size,
    )


def reread_baseline(
    config: Config,
    store: Store,
    v: Vendor,
    vendor_id: int,
    fingerprint: str,
    at: datetime,
    current_body: str | None = None,
) -> str | None:
    """Read the vendor's current list again from its raw page with today's parser and rules.

    The page read is the vendor's latest one (``current_body``) when it was read as the baseline
    (not held as suspect), else the baseline's own. A reading that differs, and that the
    structure guard accepts, is added as a new snapshot (``reading_of`` the one it replaces) and
    becomes the baseline; nothing recorded before changes, and no change is reported: the page
    did not change, only how it is read. A reading the guard refuses (the new rules read too
    little) is not kept. Returns what to tell, if anything."""
    base = store.snapshots.baseline(vendor_id)
    if base is None:
        return None
    # "superseded" as the latest: a later page read as the baseline
    latest = store.snapshots.latest_meta(vendor_id)
    current = latest is not None and latest.status in ("good", "accepted", "superseded")
    source = current_body if current and current_body else base.body_hash
    if source is None:
        return None
    body, ctype = store.bodies.load(source)
    kept = f"{v.name}: the recorded list ({len(base.entries)} entries) stays the baseline"
    try:
        page = parse_page(body, content_type=ctype, rules=v.rules, source=v.url)
    except ParseError as e:
        return f"{kept}: the current parse rules cannot read the page it came from ({e.message})"
    rows = page_rows(page.entries)
    chash = content_hash(page, rows)
    if chash == content_hash(base.page()):  # both hashed by this version
        return None
    if is_suspect(base.entries, page.entries, config.settings.guard_ratio):
        return f"{kept}: the current parse rules read only {len(page.entries)} entries from the page it came from"
    store.snapshots.insert(
        vendor_id,
        page,
        status="good",
        now=at,
        body_hash=source,
        parser_version=_parser_version(),
        chash=chash,
        rows=rows,
        reading_config=fingerprint,
        reading_of=base.reading_of or base.id,
    )
    return (
        f"{v.name}: page read again with changed parse rules or parser: {len(page.entries)} entries "
        f"(recorded: {len(base.entries)}); this reading is the new baseline, and no change is "
        "alerted for it since the page itself did not change"
    )


def _same_body(store: Store, got: Fetched, at: datetime) -> VendorResult:
    """A 304 or a byte-identical body: touch the latest snapshot, parse nothing."""
    r, state = got.result, got.state
    assert r is not None
    if state.latest_id is None:  # a body on record without a snapshot: forget it, read the page next run
        store.vendors.update(state.id, body_hash=None, etag=None, last_modified_header=None)
        why = "no snapshot matches the stored page; it will be read again on the next run"
        return VendorResult(got.vendor.name, "error", error=f"{got.vendor.name}: {why}", detected_at=at)
    store.snapshots.touch(state.latest_id, at)
    # An ETag a 304 leaves out still holds. A Last-Modified is kept only as this answer confirms
    # it (``fetch.strong_last_modified``): one stored earlier may be weak, and would hide changes.
    etag = r.etag or state.etag
    if (etag, r.last_modified_header) != (state.etag, state.last_modified_header):
        store.vendors.update(state.id, etag=etag, last_modified_header=r.last_modified_header)
    if state.latest_status == "suspect":
        why = "page structure still changed since the last good snapshot; run `policy-watch accept` if it is real"
        return VendorResult(got.vendor.name, "suspect", error=f"{got.vendor.name}: {why}", detected_at=at)
    return VendorResult(got.vendor.name, "unchanged", entries=state.latest_entries, detected_at=at)


def _new_body(
    config: Config, store: Store, got: Fetched, at: datetime, run_id: str, fingerprint: str
) -> VendorResult:
    assert got.result is not None
    bhash = store.bodies.save(
        got.result.body,
        got.result.content_type,
        previous=got.state.body_hash,
        packed=got.packed,
        hash_=got.body_hash,
        size=got.size,
    )
    result = _record_page(config, store, got, bhash, at, run_id, fingerprint)
    if result.status != "error":  # remember the body only once it is on record
        store.vendors.update(
            got.state.id,
            body_hash=bhash,
            etag=got.result.etag,
            last_modified_header=got.result.last_modified_header,
            reading_config=fingerprint,
        )
    return result


def _record_page(
    config: Config,
    store: Store,
    got: Fetched,
    bhash: str,
    at: datetime,
    run_id: str,
    fingerprint: str | None = None,
) -> VendorResult:
    v, state = got.vendor, got.state
    # no snapshot yet: no baseline
    base = None if state.latest_id is None else store.snapshots.baseline(state.id)
    if got.parse_error is not None:
        if base is None:
            return VendorResult(v.name, "error", error=f"{v.name}: {got.parse_error}", detected_at=at)
        empty = ParsedPage(entries=())
        return _suspect(
            config,
            store,
            v,
            state.id,
            empty,
            bhash,
            at,
            run_id,
            str(got.parse_error.message),
            fingerprint=fingerprint,
        )
    page = got.page
    assert page is not None
    rows = page_rows(page.entries)
    chash = content_hash(page, rows)
    if base is None:
        store.snapshots.insert(
            state.id,
            page,
            status="good",
            now=at,
            body_hash=bhash,
            parser_version=_parser_version(),
            chash=chash,
            rows=rows,
            reading_config=fingerprint,
        )
        return VendorResult(v.name, "baseline", entries=len(page.entries), detected_at=at)
    if chash == base.content_hash:
        store.snapshots.touch(base.id, at)
        _clear_suspect(store, state.id)
        return VendorResult(v.name, "unchanged", entries=len(page.entries), detected_at=at)
    if is_suspect(base.entries, page.entries, config.settings.guard_ratio):
        lost = len({e.entity for e in base.entries} - {e.entity for e in page.entries})
        why = f"{lost} of {len({e.entity for e in base.entries})} entities disappeared at once"
        return _suspect(config, store, v, state.id, page, bhash, at, run_id, why, rows, fingerprint)
    _clear_suspect(store, state.id)
    sid = store.snapshots.insert(
        state.id,
        page,
        status="good",
        now=at,
        body_hash=bhash,
        parser_version=_parser_version(),
        chash=chash,
        rows=rows,
        reading_config=fingerprint,
    )
    changes = diff_pages(base.page(), page)
    window = record_changes(config, store, v, sid, base, page, changes, at, run_id)
    status = "changed" if changes else "unchanged"
    return VendorResult(v.name, status, tuple(changes), window, entries=len(page.entries), detected_at=at)


def record_changes(
    config: Config,
    store: Store,
    v: Vendor,
    sid: int,
    base: StoredSnapshot,
    page: ParsedPage,
    changes: Sequence[Change],
    at: datetime,
    run_id: str,
) -> ObjectionWindow | None:
    """Store changes, open the objection window, and queue the alert: one transaction (the caller's)."""
    if not changes:
        return None
    kinds = config.settings.window_kinds
    rules = transfers.rules(config.transfers)
    meanings = transfers.for_changes(changes, page.entries, rules)
    opens = [
        clock.opens_window(c, kinds, m is not None and m.carries_risk)
        for c, m in zip(changes, meanings, strict=True)
    ]
    window: ObjectionWindow | None = None
    wid: int | None = None
    if any(opens):
        window = clock.open_window(at.date(), v.objection_days, page.last_modified, base.declared_date)
        wid = store.windows.insert(base.vendor_id, sid, window, at)
    wids = [wid if o else None for o in opens]
    store.changes.insert(base.vendor_id, sid, base.id, changes, wids, at)
    msg = render.change_message(
        v.name,
        v.shown_url,
        changes,
        window,
        at.date(),
        window_kinds=kinds,
        declared=page.last_modified,
        window_id=wid,
        meanings=meanings,
        transfer_rules=rules,
    )
    kinds_seen = {c.kind.value for c in changes} | {c.field or "" for c in changes}
    if any(m is not None and m.carries_risk for m in meanings):
        kinds_seen.add("transfer")
    store.outbox.enqueue(
        alerting.target_alerts(config.notify, v.name, "changes", f"changes:{sid}", msg, kinds_seen),
        run_id,
        at,
    )
    return window


def _suspect(
    config: Config,
    store: Store,
    v: Vendor,
    vendor_id: int,
    page: ParsedPage,
    bhash: str,
    at: datetime,
    run_id: str,
    why: str,
    rows: PageRows | None = None,
    fingerprint: str | None = None,
) -> VendorResult:
    rows = rows or page_rows(page.entries)
    chash = content_hash(page, rows)
    latest = store.snapshots.latest_meta(vendor_id)
    if latest is not None and latest.status == "suspect":
        # Already held and alarmed: keep the newest suspect content, alarm once per episode.
        if latest.content_hash != chash:
            store.snapshots.insert(
                vendor_id,
                page,
                status="suspect",
                now=at,
                body_hash=bhash,
                parser_version=_parser_version(),
                chash=chash,
                rows=rows,
                reading_config=fingerprint,
            )
            store.snapshots.set_status(latest.id, "superseded")
        else:
            store.snapshots.touch(latest.id, at)
    else:
        sid = store.snapshots.insert(
            vendor_id,
            page,
            status="suspect",
            now=at,
            body_hash=bhash,
            parser_version=_parser_version(),
            chash=chash,
            rows=rows,
            reading_config=fingerprint,
        )
        msg = render.notice_message(
            f"{v.name}: page structure changed — check it",
            [
                f"The subprocessor page of {v.name} no longer reads like the last good version: {why}.",
                f"Page: {v.shown_url}",
                f"Found: {len(page.entries)} entries.",
                "No entity changes are reported until the page comes back or someone runs "
                f'`policy-watch accept "{v.name}"` to accept the new content as real.',
                "The last good snapshot stays the baseline.",
            ],
        )
        store.outbox.enqueue(
            alerting.operator_alerts(config.notify, v.name, "structure", f"structure:{sid}", msg),
            run_id,
            at,
        )
    return VendorResult(
        v.name,
        "suspect",
        error=f"{v.name}: page structure changed ({why}); last good snapshot kept as baseline",
        entries=len(page.entries),
        detected_at=at,
    )


def _clear_suspect(store: Store, vendor_id: int) -> None:
    latest = store.snapshots.latest_meta(vendor_id)
    if latest is not None and latest.status == "suspect":
        store.snapshots.set_status(latest.id, "superseded")
