"""One check of every vendor: fetch → parse → store → diff → alert, failure isolated per vendor.

Fetching and parsing run in a thread pool; storing happens on the calling thread, one
transaction per vendor, so a broken vendor never touches another vendor's history and the
alerts are queued in the same transaction as the changes they report.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from policy_watch import clock, render
from policy_watch.config import Config, NotifyTarget, Vendor
from policy_watch.diff import diff_entries, is_suspect
from policy_watch.errors import FetchError, ParseError, PolicyWatchError
from policy_watch.fetch import Fetcher, FetchOptions
from policy_watch.models import Change, FetchResult, ObjectionWindow, ParsedPage, VendorResult
from policy_watch.outbox import deliver, merge_digests
from policy_watch.render import Message
from policy_watch.store import Alert, Store, StoredSnapshot, VendorState, body_hash, content_hash, pack_body

log = logging.getLogger(__name__)


def parse_page(body: bytes, **options: Any) -> ParsedPage:
    """The parse stage, imported on first use: a run where every page is unchanged never loads it."""
    from policy_watch.parse import parse_page as parse

    return parse(body, **options)


def _parser_version() -> str:
    from policy_watch.parse import PARSER_VERSION

    return PARSER_VERSION


@dataclass(frozen=True, slots=True)
class _Fetched:
    vendor: Vendor
    state: VendorState
    result: FetchResult | None = None
    error: FetchError | None = None
    page: ParsedPage | None = None
    parse_error: ParseError | None = None
    same_body: bool = False
    packed: bytes | None = None  # the body compressed on the fetch thread


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
    fetcher: Fetcher,
    *,
    vendors: Sequence[Vendor] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_result: Callable[[VendorResult], None] | None = None,
    deliver_alerts: bool = True,
    stop: threading.Event | None = None,
) -> RunReport:
    """Check vendors once, queue alerts, then deliver everything pending."""
    report = RunReport(run_id=uuid.uuid4().hex[:12], started=now())
    todo = list(vendors if vendors is not None else config.vendors)
    states = store.vendor_states([(v.name, v.url) for v in todo], report.started)
    workers = max(1, min(config.settings.concurrency, len(todo)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pw-fetch") as pool:
        queue = iter(todo)
        inflight: dict[Future[_Fetched], Vendor] = {}

        def submit_next() -> None:
            v = next(queue, None)
            if v is not None and not (stop is not None and stop.is_set()):
                inflight[pool.submit(_fetch_and_parse, fetcher, v, states[v.name])] = v

        for _ in range(2 * workers):  # a bounded window: memory stays flat however many vendors
            submit_next()
        with store.batch() as tick:
            while inflight:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    vendor = inflight.pop(fut)
                    submit_next()
                    result = _settle(config, store, fut, vendor, now(), report.run_id)
                    tick()
                    report.results.append(result)
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
    config: Config, store: Store, fut: Future[_Fetched], vendor: Vendor, at: datetime, run_id: str
) -> VendorResult:
    """Record one vendor's outcome; whatever goes wrong stays with that vendor."""
    try:
        return _record(config, store, fut.result(), at, run_id)
    except PolicyWatchError as e:
        return VendorResult(vendor.name, "error", error=str(e), detected_at=at)
    except Exception as e:
        log.exception("unexpected error while checking %s", vendor.name)
        return VendorResult(
            vendor.name, "error", error=f"{vendor.name}: internal error: {e!r}", detected_at=at
        )


def after_run(config: Config, store: Store, now: datetime, run_id: str) -> None:
    """Reminders, expiry and digests: the parts of a run that concern every vendor."""
    with store.transaction():
        queue_reminders(config, store, now, run_id)
        store.expire_windows(now.date())
        merge_digests(config, store, now, run_id)


def _fetch_and_parse(fetcher: Fetcher, vendor: Vendor, state: VendorState) -> _Fetched:
    try:
        result = fetcher.fetch(vendor.url, etag=state.etag, last_modified=state.last_modified_header)
    except FetchError as e:
        e.vendor = vendor.name
        return _Fetched(vendor, state, error=e)
    if result.not_modified or body_hash(result.body) == state.body_hash:
        return _Fetched(vendor, state, result=result, same_body=True)
    packed = None if state.body_hash else pack_body(result.body)  # a first body is stored whole
    try:
        page = parse_page(
            result.body, content_type=result.content_type, rules=vendor.rules, source=vendor.url
        )
    except ParseError as e:
        return _Fetched(vendor, state, result=result, parse_error=e, packed=packed)
    return _Fetched(vendor, state, result=result, page=page, packed=packed)


def _fetch_row(got: _Fetched, at: datetime, outcome: str, error: str | None) -> dict[str, Any]:
    r = got.result
    final = r.final_url if r and r.final_url != got.vendor.url else None
    return {"started_at": at, "url": None, "final_url": final,
            "status": (r.status if r else got.error.status if got.error else None),
            "duration_ms": r.duration_ms if r else None, "bytes": len(r.body) if r else 0,
            "outcome": outcome, "error": error}  # fmt: skip


def _record(config: Config, store: Store, got: _Fetched, at: datetime, run_id: str) -> VendorResult:
    v, state = got.vendor, got.state
    with store.transaction():
        if got.error is not None:
            store.record_fetch(state.id, _fetch_row(got, at, "error", got.error.cause))
            _count_failure(config, store, state, got.error, at, run_id)
            return VendorResult(v.name, "error", error=str(got.error), detected_at=at)
        result = _same_body(store, got, at) if got.same_body else _new_body(config, store, got, at, run_id)
        outcome = result.status
        if got.same_body and result.status == "unchanged":
            outcome = "not_modified" if got.result and got.result.not_modified else "same_body"
        store.record_fetch(state.id, _fetch_row(got, at, outcome, result.error))
        if result.status == "error":
            assert got.result is not None
            cause = FetchError(v.url, result.error or "unreadable page", vendor=v.name)
            _count_failure(config, store, state, cause, at, run_id)
        elif state.failing or state.consecutive_failures:
            _recovered(config, store, state, at, run_id)
        return result


def _same_body(store: Store, got: _Fetched, at: datetime) -> VendorResult:
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


def _new_body(config: Config, store: Store, got: _Fetched, at: datetime, run_id: str) -> VendorResult:
    assert got.result is not None
    bhash = store.save_body(
        got.result.body, got.result.content_type, previous=got.state.body_hash, packed=got.packed
    )
    result = _record_page(config, store, got, bhash, at, run_id)
    if result.status != "error":  # remember the body only once it is on record
        store.update_vendor(got.state.id, body_hash=bhash, etag=got.result.etag,
                            last_modified_header=got.result.last_modified_header)  # fmt: skip
    return result


def _record_page(
    config: Config, store: Store, got: _Fetched, bhash: str, at: datetime, run_id: str
) -> VendorResult:
    v, state = got.vendor, got.state
    base = store.baseline(state.id)
    if got.parse_error is not None:
        if base is None:
            return VendorResult(v.name, "error", error=f"{v.name}: {got.parse_error}", detected_at=at)
        empty = ParsedPage(entries=())
        return _suspect(config, store, v, state.id, empty, bhash, at, run_id, str(got.parse_error.message))
    page = got.page
    assert page is not None
    chash = content_hash(page)
    if base is None:
        store.insert_snapshot(state.id, page, status="good", now=at, body_hash=bhash,
                              parser_version=_parser_version(), chash=chash)  # fmt: skip
        return VendorResult(v.name, "baseline", entries=len(page.entries), detected_at=at)
    if chash == base.content_hash:
        store.touch_snapshot(base.id, at)
        _clear_suspect(store, state.id, base)
        return VendorResult(v.name, "unchanged", entries=len(page.entries), detected_at=at)
    if is_suspect(base.entries, page.entries, config.settings.guard_ratio):
        lost = len({e.entity for e in base.entries} - {e.entity for e in page.entries})
        why = f"{lost} of {len({e.entity for e in base.entries})} entities disappeared at once"
        return _suspect(config, store, v, state.id, page, bhash, at, run_id, why)
    _clear_suspect(store, state.id, base)
    sid = store.insert_snapshot(state.id, page, status="good", now=at, body_hash=bhash,
                                parser_version=_parser_version(), chash=chash)  # fmt: skip
    changes = diff_entries(base.entries, page.entries, base.columns, page.columns,
                           old_headers=base.headers, new_headers=page.headers)  # fmt: skip
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
    window: ObjectionWindow | None = None
    wid: int | None = None
    if any(clock.opens_window(c, kinds) for c in changes):
        window = clock.open_window(at.date(), v.objection_days, page.last_modified, base.declared_date)
        wid = store.insert_window(base.vendor_id, sid, window, at)
    wids = [wid if clock.opens_window(c, kinds) else None for c in changes]
    store.insert_changes(base.vendor_id, sid, base.id, changes, wids, at)
    msg = render.change_message(v.name, v.url, changes, window, at.date(), window_kinds=kinds,
                                declared=page.last_modified, window_id=wid)  # fmt: skip
    kinds_seen = {c.kind.value for c in changes} | {c.field or "" for c in changes}
    store.enqueue(_alerts(config.notify, v.name, "changes", f"changes:{sid}", msg, kinds_seen), run_id, at)
    return window


def _suspect(
    config: Config, store: Store, v: Vendor, vendor_id: int, page: ParsedPage, bhash: str, at: datetime,
    run_id: str, why: str,
) -> VendorResult:  # fmt: skip
    chash = content_hash(page)
    latest = store.latest_meta(vendor_id)
    if latest is not None and latest["status"] == "suspect":
        # Already held and alarmed: keep the newest suspect content, alarm once per episode.
        if latest["content_hash"] != chash:
            store.insert_snapshot(vendor_id, page, status="suspect", now=at, body_hash=bhash,
                                  parser_version=_parser_version(), chash=chash)  # fmt: skip
            store.set_snapshot_status(latest["id"], "superseded")
        else:
            store.touch_snapshot(latest["id"], at)
    else:
        sid = store.insert_snapshot(vendor_id, page, status="suspect", now=at, body_hash=bhash,
                                    parser_version=_parser_version(), chash=chash)  # fmt: skip
        msg = render.notice_message(
            f"{v.name}: page structure changed — check it",
            [f"The subprocessor page of {v.name} no longer reads like the last good version: {why}.",
             f"Page: {v.url}", f"Found: {len(page.entries)} entries.",
             "No entity changes are reported until the page comes back or someone runs "
             f"`policy-watch accept \"{v.name}\"` to accept the new content as real.",
             "The last good snapshot stays the baseline."],
        )  # fmt: skip
        store.enqueue(
            _operator_alerts(config.notify, v.name, "structure", f"structure:{sid}", msg), run_id, at
        )
    return VendorResult(v.name, "suspect", error=f"{v.name}: page structure changed ({why}); last good snapshot "
                        "kept as baseline", entries=len(page.entries), detected_at=at)  # fmt: skip


def _clear_suspect(store: Store, vendor_id: int, base: StoredSnapshot) -> None:
    latest = store.latest_snapshot(vendor_id)
    if latest is not None and latest.status == "suspect":
        store.set_snapshot_status(latest.id, "superseded")


def _count_failure(
    config: Config, store: Store, state: VendorState, error: FetchError, at: datetime, run_id: str
) -> None:
    failures = state.consecutive_failures + 1
    failing = state.failing
    if not failing and failures >= config.settings.failure_threshold:
        failing = True
        msg = render.notice_message(
            f"{state.name}: failing for {failures} runs",
            [f"policy-watch could not check {state.name} {failures} times in a row.", f"Last error: {error.cause}",
             f"URL: {error.url}", "You will get one more message when it recovers."],
        )  # fmt: skip
        store.enqueue(_operator_alerts(config.notify, state.name, "failure", f"failure:{state.id}:{at.isoformat()}", msg),
                      run_id, at)  # fmt: skip
    store.update_vendor(state.id, consecutive_failures=failures, failing=int(failing), last_error=error.cause)


def _recovered(config: Config, store: Store, state: VendorState, at: datetime, run_id: str) -> None:
    if state.failing:
        msg = render.notice_message(f"{state.name}: recovered",
                                    [f"{state.name} is being checked normally again after "
                                     f"{state.consecutive_failures} failed runs."])  # fmt: skip
        store.enqueue(_operator_alerts(config.notify, state.name, "failure", f"recovery:{state.id}:{at.isoformat()}", msg),
                      run_id, at)  # fmt: skip
    store.update_vendor(state.id, consecutive_failures=0, failing=0, last_error=None)


def _wants(t: NotifyTarget, vendor: str, kinds: Iterable[str]) -> bool:
    if t.vendors and vendor not in t.vendors:
        return False
    return not t.kinds or bool(set(t.kinds) & set(kinds))


def _alerts(
    targets: Sequence[NotifyTarget], vendor: str, kind: str, key: str, msg: Message, kinds: Iterable[str]
) -> list[Alert]:
    kinds = set(kinds) | {kind}
    return [
        Alert(t.name, vendor, kind, key, msg.title, msg.markdown, msg.html, msg.text, held=t.digest)
        for t in targets
        if _wants(t, vendor, kinds)
    ]


def _operator_alerts(
    targets: Sequence[NotifyTarget], vendor: str, kind: str, key: str, msg: Message
) -> list[Alert]:
    ops = [t for t in targets if t.operator] or [t for t in targets if not t.vendors or vendor in t.vendors]
    return [Alert(t.name, vendor, kind, key, msg.title, msg.markdown, msg.html, msg.text) for t in ops]


def queue_reminders(config: Config, store: Store, now: datetime, run_id: str) -> None:
    today = now.date()
    for w in store.windows():
        deadline = date.fromisoformat(w["deadline"])
        due = clock.reminders_due(
            deadline, today, config.settings.reminder_days, json.loads(w["reminders_sent"])
        )
        if not due or w["detected_at"][:10] == today.isoformat():
            if due:
                store.mark_reminders(w["id"], due)
            continue
        left = (deadline - today).days
        msg = render.notice_message(
            f"{w['vendor']}: {left} day{'s' if left != 1 else ''} left to object (deadline {deadline})",
            [f"Reminder: the objection window for {w['vendor']} closes on {deadline} ({left} days left).",
             f"It covers {w['change_count']} change(s) detected on {w['detected_at'][:10]}.",
             f"Page: {w['url']}", f"Record a decision with `policy-watch ack|object|accept {w['id']}`."],
        )  # fmt: skip
        kinds = {"reminder"}
        alerts = _alerts(config.notify, w["vendor"], "reminder", f"reminder:{w['id']}:{min(due)}", msg, kinds)
        store.enqueue(alerts, run_id, now)
        store.mark_reminders(w["id"], due)


def accept_suspect(
    config: Config, store: Store, vendor: Vendor, now: datetime
) -> tuple[list[Change], ObjectionWindow | None]:
    """A person confirmed the suspect content is real: it becomes the baseline, and its changes are reported."""
    vid = store.vendor_id(vendor.name)
    latest = store.latest_snapshot(vid) if vid is not None else None
    if vid is None or latest is None or latest.status != "suspect":
        raise PolicyWatchError(f"{vendor.name}: no suspect snapshot waiting to be accepted")
    base = store.baseline(vid)
    run_id = uuid.uuid4().hex[:12]
    with store.transaction():
        store.set_snapshot_status(latest.id, "accepted")
        if base is None:
            return [], None
        changes = diff_entries(base.entries, latest.entries, base.columns, latest.columns,
                               old_headers=base.headers, new_headers=latest.headers)  # fmt: skip
        window = record_changes(config, store, vendor, latest.id, base, latest.page(), changes, now, run_id)
    return changes, window


def reparse_history(config: Config, store: Store, now: datetime) -> list[tuple[str, int, int]]:
    """Re-run today's parser over stored raw bodies; rebuild entries and change rows, send nothing.

    Returns (vendor, snapshots re-read, snapshots whose entries changed).
    """
    out = []
    rules = {v.name: v.rules for v in config.vendors}
    for vrow in store.query("select id, name from vendors order by name"):
        snaps = store.query("select id, body_hash, status from snapshots where vendor_id = ?"
                            " and body_hash is not null order by id", [vrow["id"]])  # fmt: skip
        redone = changed = 0
        with store.transaction():
            prev: StoredSnapshot | None = None
            for s in snaps:
                body, ctype = store.load_body(s["body_hash"])
                try:
                    page = parse_page(
                        body, content_type=ctype, rules=rules.get(vrow["name"]), source=vrow["name"]
                    )
                except ParseError:
                    page = ParsedPage(entries=())
                redone += 1
                if content_hash(page) != content_hash(store.snapshot(s["id"]).page()):
                    changed += 1
                    store.replace_entries(s["id"], page, _parser_version())
                snap = store.snapshot(s["id"])
                if s["status"] in ("good", "accepted"):
                    if prev is not None:
                        _rebuild_changes(store, prev, snap, now)
                    prev = snap
        out.append((vrow["name"], redone, changed))
    return out


def _rebuild_changes(store: Store, prev: StoredSnapshot, snap: StoredSnapshot, now: datetime) -> None:
    old_rows = store.query(
        "select window_id, detected_at from changes where snapshot_id = ? limit 1", [snap.id]
    )
    wid = old_rows[0]["window_id"] if old_rows else None
    detected = (
        datetime.fromisoformat(old_rows[0]["detected_at"])
        if old_rows
        else datetime.fromisoformat(snap.first_seen)
    )
    store.execute("delete from changes where snapshot_id = ?", [snap.id])
    changes = diff_entries(prev.entries, snap.entries, prev.columns, snap.columns,
                           old_headers=prev.headers, new_headers=snap.headers)  # fmt: skip
    store.insert_changes(snap.vendor_id, snap.id, prev.id, changes, [wid] * len(changes), detected)
