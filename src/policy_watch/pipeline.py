"""One check of every vendor: fetch → parse → store → diff → alert, failure isolated per vendor.

Fetching and parsing run in a thread pool or in worker processes (``collect``), a bounded
window of vendors at a time; storing happens on the calling thread. Each vendor is recorded in
its own savepoint (a broken vendor never touches another's history, and its alerts are queued
with the changes they report); commits are batched, so a process killed mid-run loses at most
the last batch, which the next run checks again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from policy_watch import alerting, clock, render
from policy_watch.collect import Fetched, in_processes, in_threads, worker_count
from policy_watch.config import Config, Vendor
from policy_watch.diff import diff_pages, is_suspect
from policy_watch.errors import FetchError, PolicyWatchError
from policy_watch.fetch import Fetcher, FetchOptions
from policy_watch.meaning import transfers
from policy_watch.models import Change, ObjectionWindow, ParsedPage, VendorResult
from policy_watch.outbox import deliver, merge_digests
from policy_watch.store import PageRows, Store, StoredSnapshot, content_hash, page_rows

log = logging.getLogger(__name__)


def _parser_version() -> str:
    from policy_watch.parse import PARSER_VERSION

    return PARSER_VERSION


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


def fetch_options(config: Config) -> FetchOptions:
    s = config.settings
    return FetchOptions(user_agent=s.user_agent, timeout=s.timeout, max_bytes=s.max_bytes, retries=s.retries,
                        max_redirects=s.max_redirects, per_host=s.per_host, concurrency=s.concurrency)  # fmt: skip


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
    processes: int | None = None,
) -> RunReport:
    """Check vendors once, queue alerts, then deliver everything pending.

    ``processes`` of 2 or more fetches and parses in that many worker processes, each with its
    own HTTP client built from the config (``fetcher`` is then not used); otherwise ``fetcher``
    (or a new one) serves a thread pool of this process. None: ``settings.processes`` decides
    (``collect.worker_count``), unless a ``fetcher`` is given.
    """
    report = RunReport(run_id=uuid.uuid4().hex[:12], started=now())
    todo = list(vendors if vendors is not None else config.vendors)
    s = config.settings
    if processes is None:
        processes = 0 if fetcher is not None else s.processes
    processes = worker_count(processes, len(todo), s.concurrency)  # never more than vendors or concurrency
    by_name = store.vendor_states([(v.name, v.url) for v in todo], report.started)
    states = [by_name[v.name] for v in todo]
    with ExitStack() as stack:
        if processes >= 2:
            outcomes = in_processes(fetch_options(config), todo, states, processes, stop)
        else:
            if fetcher is None:
                fetcher = stack.enter_context(Fetcher(fetch_options(config)))
            workers = max(1, min(config.settings.concurrency, len(todo)))
            outcomes = in_threads(fetcher, todo, states, workers, stop)
        stack.callback(outcomes.close)  # an error while recording stops the fetching too
        with store.batch() as tick:
            uncommitted: list[int] = []  # results whose writes the batch has not committed yet
            for i, got in outcomes:
                result = _settle(config, store, todo[i], got, now(), report.run_id)
                held = store.in_transaction  # else an error ended the batch: what it held is undone
                if not held:
                    for k in uncommitted:
                        report.results[k] = _not_recorded(report.results[k])
                    uncommitted.clear()
                report.results.append(result)
                if tick():
                    uncommitted.clear()
                elif held:
                    uncommitted.append(len(report.results) - 1)
                if on_result:
                    on_result(result)
    try:
        after_run(config, store, now(), report.run_id)
        with store.transaction():
            store.record_run(report.run_id, report.started, now(), len(report.results), len(report.failed),
                             len(report.changed))  # fmt: skip
        if deliver_alerts:
            report.delivered, report.pending = deliver(config, store, now)
    except PolicyWatchError as e:  # the vendors' results above are on record; say what failed after them
        report.errors.append(str(e))
    report.results.sort(key=lambda r: r.vendor.casefold())
    return report


def _settle(
    config: Config, store: Store, vendor: Vendor, got: Fetched | Exception, at: datetime, run_id: str
) -> VendorResult:
    """Record one vendor's outcome; whatever goes wrong stays with that vendor."""
    try:
        if isinstance(got, Exception):
            raise got
        return _record(config, store, got, at, run_id)
    except PolicyWatchError as e:
        return VendorResult(vendor.name, "error", error=str(e), detected_at=at)
    except Exception as e:
        log.exception("unexpected error while checking %s", vendor.name)
        return VendorResult(
            vendor.name, "error", error=f"{vendor.name}: internal error: {e!r}", detected_at=at
        )


def _not_recorded(r: VendorResult) -> VendorResult:
    why = "not recorded: a database error undid this part of the run; it is checked again next run"
    return VendorResult(r.vendor, "error", error=f"{r.vendor}: {why}", detected_at=r.detected_at)


def after_run(config: Config, store: Store, now: datetime, run_id: str) -> None:
    """Reminders, expiry and digests: the parts of a run that concern every vendor."""
    with store.transaction():
        alerting.queue_reminders(config, store, now, run_id)
        store.expire_windows(now.date())
        merge_digests(config, store, now, run_id)


def _fetch_row(got: Fetched, at: datetime, outcome: str, error: str | None) -> dict[str, Any]:
    r = got.result
    final = r.final_url if r and r.final_url != got.vendor.url else None
    return {"started_at": at, "url": None, "final_url": final,
            "status": (r.status if r else got.error.status if got.error else None),
            "duration_ms": r.duration_ms if r else None, "bytes": got.size,
            "outcome": outcome, "error": error}  # fmt: skip


def _record(config: Config, store: Store, got: Fetched, at: datetime, run_id: str) -> VendorResult:
    v, state = got.vendor, got.state
    with store.transaction():
        if got.error is not None:
            store.record_fetch(state.id, _fetch_row(got, at, "error", got.error.cause))
            alerting.count_failure(config, store, state, got.error, at, run_id)
            return VendorResult(v.name, "error", error=str(got.error), detected_at=at)
        result = _same_body(store, got, at) if got.same_body else _new_body(config, store, got, at, run_id)
        outcome = result.status
        if got.same_body and result.status == "unchanged":
            outcome = "not_modified" if got.result and got.result.not_modified else "same_body"
        store.record_fetch(state.id, _fetch_row(got, at, outcome, result.error))
        if result.status == "error":
            assert got.result is not None
            cause = FetchError(v.url, result.error or "unreadable page", vendor=v.name)
            alerting.count_failure(config, store, state, cause, at, run_id)
        elif state.failing or state.consecutive_failures:
            alerting.recovered(config, store, state, at, run_id)
        return result


def _same_body(store: Store, got: Fetched, at: datetime) -> VendorResult:
    """A 304 or a byte-identical body: touch the latest snapshot, parse nothing."""
    r, state = got.result, got.state
    assert r is not None
    if state.latest_id is None:  # a body on record without a snapshot: forget it, read the page next run
        store.update_vendor(state.id, body_hash=None, etag=None, last_modified_header=None)
        why = "no snapshot matches the stored page; it will be read again on the next run"
        return VendorResult(got.vendor.name, "error", error=f"{got.vendor.name}: {why}", detected_at=at)
    store.touch_snapshot(state.latest_id, at)
    if (r.etag or r.last_modified_header) and (r.etag, r.last_modified_header) != (
        state.etag,
        state.last_modified_header,
    ):
        store.update_vendor(state.id, etag=r.etag, last_modified_header=r.last_modified_header)
    if state.latest_status == "suspect":
        why = "page structure still changed since the last good snapshot; run `policy-watch accept` if it is real"
        return VendorResult(got.vendor.name, "suspect", error=f"{got.vendor.name}: {why}", detected_at=at)
    return VendorResult(got.vendor.name, "unchanged", entries=state.latest_entries, detected_at=at)


def _new_body(config: Config, store: Store, got: Fetched, at: datetime, run_id: str) -> VendorResult:
    assert got.result is not None
    bhash = store.save_body(got.result.body, got.result.content_type, previous=got.state.body_hash,
                            packed=got.packed, hash_=got.body_hash, size=got.size)  # fmt: skip
    result = _record_page(config, store, got, bhash, at, run_id)
    if result.status != "error":  # remember the body only once it is on record
        store.update_vendor(got.state.id, body_hash=bhash, etag=got.result.etag,
                            last_modified_header=got.result.last_modified_header)  # fmt: skip
    return result


def _record_page(
    config: Config, store: Store, got: Fetched, bhash: str, at: datetime, run_id: str
) -> VendorResult:
    v, state = got.vendor, got.state
    base = None if state.latest_id is None else store.baseline(state.id)  # no snapshot yet: no baseline
    if got.parse_error is not None:
        if base is None:
            return VendorResult(v.name, "error", error=f"{v.name}: {got.parse_error}", detected_at=at)
        empty = ParsedPage(entries=())
        return _suspect(config, store, v, state.id, empty, bhash, at, run_id, str(got.parse_error.message))
    page = got.page
    assert page is not None
    rows = page_rows(page.entries)
    chash = content_hash(page, rows)
    if base is None:
        store.insert_snapshot(state.id, page, status="good", now=at, body_hash=bhash,
                              parser_version=_parser_version(), chash=chash, rows=rows)  # fmt: skip
        return VendorResult(v.name, "baseline", entries=len(page.entries), detected_at=at)
    if chash == base.content_hash:
        store.touch_snapshot(base.id, at)
        _clear_suspect(store, state.id)
        return VendorResult(v.name, "unchanged", entries=len(page.entries), detected_at=at)
    if is_suspect(base.entries, page.entries, config.settings.guard_ratio):
        lost = len({e.entity for e in base.entries} - {e.entity for e in page.entries})
        why = f"{lost} of {len({e.entity for e in base.entries})} entities disappeared at once"
        return _suspect(config, store, v, state.id, page, bhash, at, run_id, why, rows)
    _clear_suspect(store, state.id)
    sid = store.insert_snapshot(state.id, page, status="good", now=at, body_hash=bhash,
                                parser_version=_parser_version(), chash=chash, rows=rows)  # fmt: skip
    changes = diff_pages(base.page(), page)
    window = record_changes(config, store, v, sid, base, page, changes, at, run_id)
    status = "changed" if changes else "unchanged"
    return VendorResult(v.name, status, tuple(changes), window, entries=len(page.entries), detected_at=at)


def record_changes(
    config: Config, store: Store, v: Vendor, sid: int, base: StoredSnapshot, page: ParsedPage,
    changes: Sequence[Change], at: datetime, run_id: str,
) -> ObjectionWindow | None:  # fmt: skip
    """Store changes, open the objection window, and queue the alert: one transaction (the caller's)."""
    if not changes:
        return None
    kinds = config.settings.window_kinds
    rules = transfers.rules(config.transfers)
    meanings = transfers.for_changes(changes, page.entries, rules)
    opens = [clock.opens_window(c, kinds, m is not None and m.carries_risk) for c, m in zip(changes, meanings, strict=True)]
    window: ObjectionWindow | None = None
    wid: int | None = None
    if any(opens):
        window = clock.open_window(at.date(), v.objection_days, page.last_modified, base.declared_date)
        wid = store.insert_window(base.vendor_id, sid, window, at)
    wids = [wid if o else None for o in opens]
    store.insert_changes(base.vendor_id, sid, base.id, changes, wids, at)
    msg = render.change_message(v.name, v.url, changes, window, at.date(), window_kinds=kinds,
                                declared=page.last_modified, window_id=wid, meanings=meanings,
                                transfer_rules=rules)  # fmt: skip
    kinds_seen = {c.kind.value for c in changes} | {c.field or "" for c in changes}
    if any(m is not None and m.carries_risk for m in meanings):
        kinds_seen.add("transfer")
    store.enqueue(
        alerting.target_alerts(config.notify, v.name, "changes", f"changes:{sid}", msg, kinds_seen),
        run_id,
        at,
    )
    return window


def _suspect(
    config: Config, store: Store, v: Vendor, vendor_id: int, page: ParsedPage, bhash: str, at: datetime,
    run_id: str, why: str, rows: PageRows | None = None,
) -> VendorResult:  # fmt: skip
    rows = rows or page_rows(page.entries)
    chash = content_hash(page, rows)
    latest = store.latest_meta(vendor_id)
    if latest is not None and latest["status"] == "suspect":
        # Already held and alarmed: keep the newest suspect content, alarm once per episode.
        if latest["content_hash"] != chash:
            store.insert_snapshot(vendor_id, page, status="suspect", now=at, body_hash=bhash,
                                  parser_version=_parser_version(), chash=chash, rows=rows)  # fmt: skip
            store.set_snapshot_status(latest["id"], "superseded")
        else:
            store.touch_snapshot(latest["id"], at)
    else:
        sid = store.insert_snapshot(vendor_id, page, status="suspect", now=at, body_hash=bhash,
                                    parser_version=_parser_version(), chash=chash, rows=rows)  # fmt: skip
        msg = render.notice_message(
            f"{v.name}: page structure changed — check it",
            [f"The subprocessor page of {v.name} no longer reads like the last good version: {why}.",
             f"Page: {v.url}", f"Found: {len(page.entries)} entries.",
             "No entity changes are reported until the page comes back or someone runs "
             f"`policy-watch accept \"{v.name}\"` to accept the new content as real.",
             "The last good snapshot stays the baseline."],
        )  # fmt: skip
        store.enqueue(
            alerting.operator_alerts(config.notify, v.name, "structure", f"structure:{sid}", msg),
            run_id,
            at,
        )
    return VendorResult(v.name, "suspect", error=f"{v.name}: page structure changed ({why}); last good snapshot "
                        "kept as baseline", entries=len(page.entries), detected_at=at)  # fmt: skip


def _clear_suspect(store: Store, vendor_id: int) -> None:
    latest = store.latest_meta(vendor_id)
    if latest is not None and latest["status"] == "suspect":
        store.set_snapshot_status(latest["id"], "superseded")
