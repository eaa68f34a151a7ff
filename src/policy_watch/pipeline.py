"""One check of every vendor: fetch → parse → store → diff → alert, failure isolated per vendor.

Fetching and parsing run in a thread pool (``collect``), a bounded window of vendors at a
time; storing happens on the calling thread. Each vendor is recorded in
its own savepoint (a broken vendor never touches another's history, and its alerts are queued
with the changes they report); commits are batched, so a process killed mid-run loses at most
the last batch, which the next run checks again. Alerts do not wait for the end of the run: after
a commit, or when no vendor finished for ``ALERT_IDLE`` seconds, the batch ends and the alerts
recorded so far are sent (``_EarlyDelivery``), so one slow page holds back no other vendor's.

``run_check`` starts the fetching (``collect``), hands each outcome to ``record.record_vendor``
(the store and diff stages of one page), sends the alerts as they are committed, and ends with
``after_run``: what concerns every vendor (reminders, expiry, digests, company names).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime

from policy_watch import alerting, render
from policy_watch.browser import Browser, BrowserOptions
from policy_watch.collect import Fetched, Outcomes, in_threads
from policy_watch.config import Config, Vendor
from policy_watch.errors import PolicyWatchError
from policy_watch.fetch import Fetcher, FetchOptions
from policy_watch.meaning import transfers
from policy_watch.models import (
    VendorResult,
    VendorStatus,
)
from policy_watch.outbox import deliver, merge_digests
from policy_watch.record import Run, record_vendor, utcnow
from policy_watch.store import Store

log = logging.getLogger(__name__)

ALERT_IDLE = 0.5  # seconds without a vendor done after which alerts already recorded are sent


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
        return [r for r in self.results if r.status.failed]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    @property
    def changed(self) -> list[VendorResult]:
        return [r for r in self.results if r.status is VendorStatus.CHANGED]


def run_check(
    config: Config,
    store: Store,
    fetcher: Fetcher | None = None,
    *,
    vendors: Sequence[Vendor] | None = None,
    now: Callable[[], datetime] = utcnow,
    on_result: Callable[[VendorResult], None] | None = None,
    deliver_alerts: bool = True,
    stop: threading.Event | None = None,
) -> RunReport:
    """Check vendors once, queue alerts, then deliver everything pending.

    ``fetcher`` (or a new one built from the config) serves the thread pool that fetches and
    parses; no new vendor starts once ``stop`` is set.
    """
    run = Run(config, store, now=now)
    report = RunReport(run_id=run.run_id, started=now())
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
        early = _EarlyDelivery(run, report) if deliver_alerts else None
        while _record_outcomes(run, todo, outcomes, report, on_result, early):
            assert early is not None
            early.deliver()
    try:
        report.errors += after_run(run, now())
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


def _record_outcomes(
    run: Run,
    todo: Sequence[Vendor],
    outcomes: Outcomes,
    report: RunReport,
    on_result: Callable[[VendorResult], None] | None,
    early: _EarlyDelivery | None,
) -> bool:
    """Record outcomes in one batch of transactions. Returns True, with everything recorded so far
    committed, when alerts are waiting to be sent and the caller should send them and call again
    (after a commit, or when no vendor came for a while); False when every outcome is recorded."""
    store = run.store
    with store.batch() as tick:
        uncommitted: list[int] = []  # results whose writes the batch has not committed yet
        for i, outcome in outcomes:
            if outcome is None:  # no vendor done for a while: what was recorded may go out now
                if early is not None and early.wanted():
                    return True
                continue
            result = record_vendor(run, todo[i], outcome, run.now())
            held = store.in_transaction  # else an error ended the batch: what it held is undone
            if not held:
                for k in uncommitted:
                    report.results[k] = _not_recorded(report.results[k])
                uncommitted.clear()
            report.results.append(result)
            committed = tick()
            if committed:
                uncommitted.clear()
                _names_so_far(run)
            elif held:
                uncommitted.append(len(report.results) - 1)
            if on_result:
                on_result(result)
            if early is not None:
                early.note(outcome, result)
                if committed and early.wanted():
                    return True
    return False


def _not_recorded(r: VendorResult) -> VendorResult:
    return VendorResult(
        r.vendor, VendorStatus.ERROR, error=render.not_recorded(r.vendor), detected_at=r.detected_at
    )


class _EarlyDelivery:
    """Sends the alerts of vendors already recorded while the run goes on, so that one slow page
    delays no other vendor's alert. Only committed alerts are sent, outside any transaction (the
    outbox marks each 'sending' before it goes), so none is sent twice; a target that failed is
    left alone for the rest of the run, as in the final delivery."""

    def __init__(self, run: Run, report: RunReport) -> None:
        self.run, self.report = run, report
        self.due = False  # a vendor recorded since the last delivery may have queued an alert
        self.down: set[str] = set()
        self.failed = False

    def note(self, outcome: Fetched | Exception, result: VendorResult) -> None:
        recovered = isinstance(outcome, Fetched) and (
            outcome.state.failing or outcome.state.consecutive_failures > 0
        )
        alerted = result.status in (VendorStatus.CHANGED, VendorStatus.SUSPECT, VendorStatus.ERROR)
        self.due = self.due or alerted or recovered

    def wanted(self) -> bool:
        return self.due and not self.failed

    def deliver(self) -> None:
        self.due = False
        try:
            sent, _ = deliver(self.run.config, self.run.store, self.run.now, down=self.down)
        except PolicyWatchError as e:  # the final delivery tries again and reports it
            log.warning("alerts not delivered during the run: %s", e)
            self.failed = True
            return
        self.report.delivered += sent


def after_run(run: Run, at: datetime) -> list[str]:
    """Reminders, expiry and digests, then company names: the parts of a run that concern every
    vendor. Returns what went wrong with the names (derived data, which hold back nothing else)."""
    config, store = run.config, run.store
    with store.transaction():
        alerting.queue_reminders(config, store, at, run.run_id)
        store.windows.expire(at.date())
        merge_digests(config, store, at, run.run_id)
    problem = _names_so_far(run)
    return [] if problem is None else [problem]


def _names_so_far(run: Run) -> str | None:
    """The company names of the pages committed so far: after each commit while the other pages are
    fetched (waiting on servers leaves this thread idle), and once more at the end. Derived data: a
    failure here fails no vendor and is said (returned, and logged), and the next call tries again."""
    try:
        with run.store.transaction():
            _refresh_entity_names(run.config, run.store)
    except Exception as e:
        if not isinstance(e, PolicyWatchError):
            log.exception("reading company names failed")
        problem = f"company names not brought up to date: {e}"
        log.warning("%s", problem)
        return problem
    return None


def _refresh_entity_names(config: Config, store: Store) -> None:
    """Keep the table SQL readers group companies by in step with the lists: the spellings it lacks
    are read and added; all of them again only when the alias rules changed."""
    from policy_watch.meaning import entities

    fingerprint = entities.fingerprint(config.aliases, config.transfers.places)
    todo = store.entries.names_todo(fingerprint)
    if todo.nothing:
        return
    table, places = entities.alias_table(config.aliases), transfers.rules(config.transfers).gazetteer
    idents = [(name, entities.identify(name, table, places)) for name in todo.spellings]
    store.entries.add_names([(name, i.company, i.key) for name, i in idents], fingerprint, todo)


# --- the fetch stage's settings ----------------------------------------------------------------


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
