"""The daily loop, with the `schedule` library. The only module that imports schedule."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from zoneinfo import ZoneInfo

import schedule

from policy_watch import pipeline, render
from policy_watch.config import Config
from policy_watch.errors import LockedError, PolicyWatchError
from policy_watch.outbox import deliver
from policy_watch.store import Store, run_lock

log = logging.getLogger(__name__)
RETRY_EVERY_MINUTES = 15  # the daemon retries undelivered alerts this often between daily runs


def missed_run(config: Config, store: Store, now: datetime) -> bool:
    """True when today's scheduled time has passed and no run happened since it."""
    tz = ZoneInfo(config.settings.timezone)
    local = now.astimezone(tz)
    hh, mm = (int(x) for x in config.settings.run_at.split(":"))
    scheduled = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if local < scheduled:
        return False
    last = store.runs.last()
    return last is None or last < scheduled


@contextmanager
def _locked(config: Config) -> Iterator[Store]:
    """The database, opened under the run lock (LockedError while another check runs)."""
    with run_lock(config.settings.database):
        store = Store.open(config.settings.database)
        try:
            yield store
        finally:
            store.close()


def run_once(config: Config, stop: threading.Event, echo: Callable[[str], None]) -> None:
    """One scheduled check; never raises, so the loop survives any failure."""
    try:
        with _locked(config) as store:
            report = pipeline.run_check(config, store, stop=stop)
        echo(
            f"{datetime.now(UTC).isoformat(timespec='seconds')} checked {render.counted(len(report.results), 'vendor')}: "
            f"{len(report.changed)} changed, {len(report.failed)} failed; alerts sent {report.delivered}, "
            f"pending {report.pending}"
        )
        for r in report.failed:
            echo(f"  {r.status}: {r.error}")
    except LockedError as e:
        echo(f"skipped: {e}")
    except (PolicyWatchError, OSError) as e:
        echo(f"run failed: {e}")
    except Exception:
        log.exception("run failed")
        echo("run failed with an unexpected error (see the log)")


def retry_alerts(config: Config, echo: Callable[[str], None]) -> None:
    """Between daily runs: send alerts whose earlier delivery failed, once their backoff has passed."""
    try:
        with _locked(config) as store:
            sent, pending = deliver(config, store, lambda: datetime.now(UTC))
        if sent:
            echo(
                f"{datetime.now(UTC).isoformat(timespec='seconds')} sent {sent} delayed alert(s); {pending} pending"
            )
    except LockedError:
        return  # a check is running; it delivers pending alerts itself
    except (PolicyWatchError, OSError) as e:
        echo(f"alert retry failed: {e}")
    except Exception:
        log.exception("alert retry failed")


def run_daemon(
    config: Config,
    *,
    force_first: bool = False,
    echo: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    stop = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        echo(f"received signal {signum}: stopping after the current vendor")
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    s = config.settings
    sched = schedule.Scheduler()
    sched.every().day.at(s.run_at, s.timezone).do(run_once, config, stop, echo)
    sched.every(RETRY_EVERY_MINUTES).minutes.do(retry_alerts, config, echo)
    store = Store.open(s.database)
    try:
        first = force_first or missed_run(config, store, datetime.now(UTC))
    finally:
        store.close()
    echo(
        f"policy-watch daemon: {render.counted(len(config.vendors), 'vendor')}, daily at {s.run_at} {s.timezone}"
    )
    if first and not stop.is_set():
        run_once(config, stop, echo)
    while not stop.is_set():
        sched.run_pending()
        idle = sched.idle_seconds
        stop.wait(max(1.0, min(60.0, idle if idle is not None else 60.0)))
    echo("policy-watch daemon stopped")
