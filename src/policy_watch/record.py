"""Recording one vendor's outcome: the store and diff stages of one page.

``record_vendor`` takes what the fetch stage handed on (a page read, a page unchanged, or a
failure) and writes it down in one transaction: the fetch, the raw page as evidence, a snapshot when
the list changed, the changes, the objection windows they open and the alerts that report them.
Whether a new reading is believed or held as suspect is decided in ``policy``; what people are
told is written in ``render``. ``reread_baseline`` reads a stored page again when the way it is
read changed (a new parser or new parse rules); ``record_changes`` is also used by ``history``
when a person accepts a reading that was held.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from policy_watch import alerting, clock, policy, render
from policy_watch.collect import Fetched, parse_page
from policy_watch.config import Config, Vendor
from policy_watch.diff import diff_pages
from policy_watch.errors import FetchError, ParseError, PolicyWatchError
from policy_watch.meaning import transfers
from policy_watch.models import (
    Change,
    ObjectionWindow,
    ParsedPage,
    ParseRules,
    SnapshotStatus,
    VendorResult,
    VendorStatus,
)
from policy_watch.policy import Hold, Verdict
from policy_watch.store import PageRows, Store, StoredSnapshot, content_hash, page_rows
from policy_watch.store.rows import FetchRecord

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True, slots=True)
class Run:
    """One check (or one operation on history): what recording a vendor's outcome needs. Each
    vendor's outcome is stamped with ``now()`` when it is recorded."""

    config: Config
    store: Store
    run_id: str = field(default_factory=new_run_id)
    now: Callable[[], datetime] = utcnow


def record_vendor(run: Run, vendor: Vendor, outcome: Fetched | Exception, at: datetime) -> VendorResult:
    """Record one vendor's outcome; whatever goes wrong stays with that vendor."""
    try:
        if isinstance(outcome, Exception):
            raise outcome
        return _record_fetched(run, outcome, at)
    except PolicyWatchError as e:
        return VendorResult(vendor.name, VendorStatus.ERROR, error=vendor.hide(str(e)), detected_at=at)
    except Exception as e:
        if vendor.secrets:  # the traceback could show the URL
            log.error("unexpected error while checking %s: %s", vendor.name, vendor.hide(repr(e)))
        else:
            log.exception("unexpected error while checking %s", vendor.name)
        error = vendor.hide(f"{vendor.name}: internal error: {e!r}")
        return VendorResult(vendor.name, VendorStatus.ERROR, error=error, detected_at=at)


def _record_fetched(run: Run, got: Fetched, at: datetime) -> VendorResult:
    """One vendor's fetch, its page (if it is new or read differently now) and its failure count:
    one transaction."""
    config, store = run.config, run.store
    vendor, state = got.vendor, got.state
    with store.transaction():
        if got.error is not None:
            store.vendors.record_fetch(state.id, _fetch_row(got, at, "error", got.error.cause))
            alerting.count_failure(config, store, state, got.error, at, run.run_id)
            return VendorResult(vendor.name, VendorStatus.ERROR, error=str(got.error), detected_at=at)
        fingerprint = reading_config(vendor)
        read_differently = state.reading_config != fingerprint
        notice = None
        if read_differently and state.latest_id is not None:
            notice = reread_baseline(run, vendor, state.id, at, state.body_hash)
        if got.same_body and read_differently and state.body_hash is not None:
            result = _new_body(run, _read_stored(store, got), at, fingerprint)
        elif got.same_body:
            result = _same_body(store, got, at)
        else:
            result = _new_body(run, got, at, fingerprint)
        if notice is not None:
            result = replace(result, notice=notice)
        outcome: str = result.status
        if got.same_body and result.status is VendorStatus.UNCHANGED:
            outcome = "not_modified" if got.result and got.result.not_modified else "same_body"
        store.vendors.record_fetch(state.id, _fetch_row(got, at, outcome, result.error))
        if result.status is VendorStatus.ERROR:
            assert got.result is not None
            cause = FetchError(vendor.shown_url, result.error or "unreadable page", vendor=vendor.name)
            alerting.count_failure(config, store, state, cause, at, run.run_id)
        elif state.failing or state.consecutive_failures:
            alerting.recovered(config, store, state, at, run.run_id)
        return result


def _same_body(store: Store, got: Fetched, at: datetime) -> VendorResult:
    """A 304 or a byte-identical body: touch the latest snapshot, parse nothing."""
    r, state, name = got.result, got.state, got.vendor.name
    assert r is not None
    if state.latest_id is None:  # a body on record without a snapshot: forget it, read the page next run
        store.vendors.update(state.id, body_hash=None, etag=None, last_modified_header=None)
        return VendorResult(
            name, VendorStatus.ERROR, error=render.body_without_snapshot(name), detected_at=at
        )
    store.snapshots.touch(state.latest_id, at)
    # An ETag a 304 leaves out still holds. A Last-Modified is kept only as this answer confirms
    # it (``fetch.strong_last_modified``): one stored earlier may be weak, and would hide changes.
    etag = r.etag or state.etag
    if (etag, r.last_modified_header) != (state.etag, state.last_modified_header):
        store.vendors.update(state.id, etag=etag, last_modified_header=r.last_modified_header)
    if state.latest_status == SnapshotStatus.SUSPECT:
        return VendorResult(name, VendorStatus.SUSPECT, error=render.still_held(name), detected_at=at)
    return VendorResult(name, VendorStatus.UNCHANGED, entries=state.latest_entries, detected_at=at)


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


def _new_body(run: Run, got: Fetched, at: datetime, fingerprint: str) -> VendorResult:
    """A page not on record: keep it as evidence, then take in what was read from it."""
    assert got.result is not None
    bhash = run.store.bodies.save(
        got.result.body,
        got.result.content_type,
        previous=got.state.body_hash,
        packed=got.packed,
        hash_=got.body_hash,
        size=got.size,
    )
    if got.parse_error is not None:
        reading = _Reading.of(ParsedPage(entries=()), bhash, fingerprint, unreadable=got.parse_error.message)
    else:
        assert got.page is not None
        reading = _Reading.of(got.page, bhash, fingerprint)
    result = _take_reading(run, got, reading, at)
    if result.status is not VendorStatus.ERROR:  # remember the body only once it is on record
        run.store.vendors.update(
            got.state.id,
            body_hash=bhash,
            etag=got.result.etag,
            last_modified_header=got.result.last_modified_header,
            reading_config=fingerprint,
        )
    return result


@dataclass(frozen=True, slots=True)
class _Reading:
    """A page as read, ready to store: its list, rows and content hash, the raw page it came from
    and how it was read; ``unreadable`` (with no entries) when the parser could not read it."""

    page: ParsedPage
    rows: PageRows
    chash: str
    body_hash: str
    fingerprint: str
    unreadable: str | None = None

    @classmethod
    def of(
        cls, page: ParsedPage, body_hash: str, fingerprint: str, unreadable: str | None = None
    ) -> _Reading:
        rows = page_rows(page.entries)
        return cls(page, rows, content_hash(page, rows), body_hash, fingerprint, unreadable)

    def judged(self) -> policy.Reading:
        return policy.Reading(self.page.entries, self.chash, self.unreadable)

    def save(
        self, run: Run, vendor_id: int, status: SnapshotStatus, at: datetime, reading_of: int | None = None
    ) -> int:
        return run.store.snapshots.insert(
            vendor_id,
            self.page,
            status=status,
            now=at,
            body_hash=self.body_hash,
            parser_version=_parser_version(),
            chash=self.chash,
            rows=self.rows,
            reading_config=self.fingerprint,
            reading_of=reading_of,
        )


def _take_reading(run: Run, got: Fetched, reading: _Reading, at: datetime) -> VendorResult:
    """Compare a new reading with the baseline and record what the policy makes of it."""
    vendor, state, store = got.vendor, got.state, run.store
    base = (
        None if state.latest_id is None else store.snapshots.baseline(state.id)
    )  # no snapshot yet: no baseline
    baseline = None if base is None else policy.Reading(base.entries, base.content_hash)
    judgement = policy.judge(baseline, reading.judged(), run.config.settings.guard_ratio)
    entries = len(reading.page.entries)
    match judgement.verdict:
        case Verdict.UNREADABLE:
            return VendorResult(
                vendor.name, VendorStatus.ERROR, error=f"{vendor.name}: {got.parse_error}", detected_at=at
            )
        case Verdict.FIRST:
            reading.save(run, state.id, SnapshotStatus.GOOD, at)
            return VendorResult(vendor.name, VendorStatus.BASELINE, entries=entries, detected_at=at)
        case Verdict.HOLD:
            assert judgement.suspicion is not None
            return _hold(run, vendor, state.id, reading, judgement.suspicion, at)
        case Verdict.SAME:
            assert base is not None
            store.snapshots.touch(base.id, at)
            _end_hold(store, state.id)
            return VendorResult(vendor.name, VendorStatus.UNCHANGED, entries=entries, detected_at=at)
    assert base is not None and judgement.verdict is Verdict.NEW
    _end_hold(store, state.id)
    sid = reading.save(run, state.id, SnapshotStatus.GOOD, at)
    changes = diff_pages(base.page(), reading.page)
    window = record_changes(run, vendor, sid, base, reading.page, changes, at)
    status = VendorStatus.CHANGED if changes else VendorStatus.UNCHANGED
    return VendorResult(vendor.name, status, tuple(changes), window, entries=entries, detected_at=at)


def _hold(
    run: Run, vendor: Vendor, vendor_id: int, reading: _Reading, why: policy.Suspicion, at: datetime
) -> VendorResult:
    """Keep a reading the guard holds as suspect; alarm the operators once per episode."""
    store = run.store
    latest = store.snapshots.latest_meta(vendor_id)
    if latest is None:
        step = policy.hold(None, None, reading.chash)
    else:
        step = policy.hold(latest.status, latest.content_hash, reading.chash)
    if step is Hold.CONFIRM:
        assert latest is not None
        store.snapshots.touch(latest.id, at)
    elif step is Hold.REPLACE:
        assert latest is not None
        reading.save(run, vendor_id, SnapshotStatus.SUSPECT, at)
        store.snapshots.set_status(latest.id, SnapshotStatus.SUPERSEDED)
    else:
        sid = reading.save(run, vendor_id, SnapshotStatus.SUSPECT, at)
        msg = render.structure_alarm(vendor.name, vendor.shown_url, why, len(reading.page.entries))
        alerts = alerting.operator_alerts(
            run.config.notify, vendor.name, "structure", f"structure:{sid}", msg
        )
        store.outbox.enqueue(alerts, run.run_id, at)
    error = render.held_error(vendor.name, why)
    entries = len(reading.page.entries)
    return VendorResult(vendor.name, VendorStatus.SUSPECT, error=error, entries=entries, detected_at=at)


def _end_hold(store: Store, vendor_id: int) -> None:
    """A reading was taken as real: a suspect one held before it is superseded."""
    latest = store.snapshots.latest_meta(vendor_id)
    if latest is not None and latest.status == SnapshotStatus.SUSPECT:
        store.snapshots.set_status(latest.id, SnapshotStatus.SUPERSEDED)


def record_changes(
    run: Run,
    vendor: Vendor,
    sid: int,
    base: StoredSnapshot,
    page: ParsedPage,
    changes: Sequence[Change],
    at: datetime,
) -> ObjectionWindow | None:
    """Store the changes from ``base`` to snapshot ``sid`` (``page``), open the objection window,
    and queue the alert: one transaction (the caller's)."""
    if not changes:
        return None
    config, store = run.config, run.store
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
        window = clock.open_window(at.date(), vendor.objection_days, page.last_modified, base.declared_date)
        wid = store.windows.insert(base.vendor_id, sid, window, at)
    wids = [wid if o else None for o in opens]
    store.changes.insert(base.vendor_id, sid, base.id, changes, wids, at)
    msg = render.change_message(
        vendor.name,
        vendor.shown_url,
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
        alerting.target_alerts(config.notify, vendor.name, "changes", f"changes:{sid}", msg, kinds_seen),
        run.run_id,
        at,
    )
    return window


def reread_baseline(
    run: Run, vendor: Vendor, vendor_id: int, at: datetime, current_body: str | None = None
) -> str | None:
    """Read the vendor's current list again from its raw page with today's parser and rules.

    The page read is the vendor's latest one (``current_body``) when it was read as the baseline
    (not held as suspect), else the baseline's own. A reading that differs, and that the
    structure guard accepts, is added as a new snapshot (``reading_of`` the one it replaces) and
    becomes the baseline; nothing recorded before changes, and no change is reported: the page
    did not change, only how it is read. A reading the guard refuses (the new rules read too
    little) is not kept. Returns what to tell, if anything."""
    store = run.store
    base = store.snapshots.baseline(vendor_id)
    if base is None:
        return None
    latest = store.snapshots.latest_meta(
        vendor_id
    )  # "superseded" as the latest: a later page read as the baseline
    read_as_baseline = (SnapshotStatus.GOOD, SnapshotStatus.ACCEPTED, SnapshotStatus.SUPERSEDED)
    current = latest is not None and latest.status in read_as_baseline
    source = current_body if current and current_body else base.body_hash
    if source is None:
        return None
    body, ctype = store.bodies.load(source)
    try:
        page = parse_page(body, content_type=ctype, rules=vendor.rules, source=vendor.url)
        reading = _Reading.of(page, source, reading_config(vendor))
    except ParseError as e:
        reading = _Reading.of(ParsedPage(entries=()), source, reading_config(vendor), unreadable=e.message)
    recorded = policy.Reading(base.entries, content_hash(base.page()))  # both hashed by this version
    judgement = policy.judge(recorded, reading.judged(), run.config.settings.guard_ratio)
    if judgement.verdict is Verdict.SAME:
        return None
    if judgement.verdict is Verdict.HOLD:
        assert judgement.suspicion is not None
        return render.reread_kept(
            vendor.name, len(base.entries), len(reading.page.entries), judgement.suspicion
        )
    reading.save(run, vendor_id, SnapshotStatus.GOOD, at, reading_of=base.reading_of or base.id)
    return render.reread_taken(vendor.name, len(reading.page.entries), len(base.entries))


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


def _fetch_row(got: Fetched, at: datetime, outcome: str, error: str | None) -> FetchRecord:
    r = got.result
    return FetchRecord(
        started_at=at,
        outcome=outcome,
        status=r.status if r else got.error.status if got.error else None,
        duration_ms=r.duration_ms if r else None,
        bytes=got.size,
        error=error,
        final_url=r.final_url if r and r.final_url != got.vendor.shown_url else None,
    )
