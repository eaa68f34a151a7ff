"""The fetch-and-parse half of a check: each vendor's page fetched, hashed and parsed, handed on
as it completes, in threads of this process or in worker processes.

A check spends its CPU time in three places: HTTP (httpx), parsing, and recording (SQLite).
Under one interpreter lock, the recording thread has to win the lock back from the fetch
threads after every SQLite statement, and a first run became bound by that wait. With
``processes`` of 2 or more, worker processes fetch and parse (each with its own threads and
HTTP client) and this process only records. Vendors are split between workers so that the
global and per-host limits still hold across them (see ``plan``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import struct
import sys
import threading
import time
from collections.abc import Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from typing import Any, Protocol

from policy_watch.browser import Browser, BrowserOptions
from policy_watch.config import Vendor
from policy_watch.errors import FetchError, ParseError, PolicyWatchError
from policy_watch.fetch import Fetcher, FetchOptions, host_key, load_tls_for
from policy_watch.models import FetchResult, ParsedPage
from policy_watch.sources import Renderer, fetch_source
from policy_watch.store.records import VendorState, body_hash, pack_body

log = logging.getLogger(__name__)

AUTO_MIN_VENDORS = 200  # below this, starting worker processes costs more than it saves
AUTO_MAX_PROCESSES = 4
_END = b"end"


Outcomes = Generator[tuple[int, "Fetched | Exception"], None, None]  # (position in the vendor list, outcome)


class Flag(Protocol):
    """``threading.Event`` or ``multiprocessing.Event``: set when the check should stop early."""

    def is_set(self) -> bool: ...


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
    body_size: int | None = None  # set when the body itself stayed behind (``for_transfer``)

    @property
    def size(self) -> int:
        """The length of the body fetched (0 for a 304 or an error)."""
        if self.body_size is not None:
            return self.body_size
        return len(self.result.body) if self.result is not None else 0

    def for_transfer(self) -> tuple[Any, ...]:
        """What a worker process sends: every field but the vendor and its state, which the parent
        has (``Fetched(vendor, state, *fields)`` rebuilds it); a first body only compressed (a
        fifth of its size), since recording needs nothing else of it; a later body whole, as the
        delta is made from it."""
        result, size = self.result, self.body_size
        if self.packed is not None and result is not None:
            result, size = replace(result, body=b""), len(result.body)
        return (result, self.error, self.page, self.parse_error, self.same_body, self.packed, self.body_hash, size)


class WorkerLost(PolicyWatchError):
    """A worker process ended before it reported this vendor (one per vendor, naming it)."""


def parse_page(body: bytes, **options: Any) -> ParsedPage:
    """The parse stage, imported on first use: a run where every page is unchanged never loads it."""
    from policy_watch.parse import parse_page as parse

    return parse(body, **options)


def fetch_and_parse(fetcher: Fetcher, vendor: Vendor, state: VendorState, renderer: Renderer | None = None) -> Fetched:
    try:
        result = fetch_source(fetcher, vendor, state, renderer)
    except FetchError as e:
        e.vendor = vendor.name
        return Fetched(vendor, state, error=e)
    got = _read(vendor, state, result)
    if got.parse_error is None or renderer is None or vendor.render or vendor.follow or vendor.is_file:
        return got
    if not looks_like_shell(result):
        return got
    try:  # a script-built page: the list appears once a browser has run its scripts
        rendered = renderer.render(vendor.url)
    except FetchError as e:
        why = f"the page looks built by scripts and could not be rendered: {e.cause}"
        return Fetched(vendor, state, error=FetchError(vendor.url, why, vendor=vendor.name, status=e.status))
    return _read(vendor, state, rendered)


def _read(vendor: Vendor, state: VendorState, result: FetchResult) -> Fetched:
    """Hash a fetched body and parse it, unless it is the body on record."""
    bhash = None if result.not_modified else body_hash(result.body)
    if bhash is None or bhash == state.body_hash:
        return Fetched(vendor, state, result=result, same_body=True)
    packed = None if state.body_hash else pack_body(result.body)  # a first body is stored whole
    try:
        page = parse_page(
            result.body, content_type=result.content_type, rules=vendor.rules, source=vendor.url
        )
    except ParseError as e:
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
    stop: Flag | None = None,
    renderer: Renderer | None = None,
) -> Outcomes:
    """Fetch and parse in a thread pool; yield (position, outcome) as each completes.

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
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
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


# --- worker processes ------------------------------------------------------------------------------


def worker_count(setting: int | None, vendors: int, concurrency: int) -> int:
    """How many worker processes a check of ``vendors`` uses: 0 means threads of this process.

    ``setting`` is ``settings.processes``: None chooses by itself (the usable CPUs, at most
    4, for 200 vendors or more), 0 or 1 keeps everything in this process.
    """
    if setting is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        setting = min(cpus, AUTO_MAX_PROCESSES) if vendors >= AUTO_MIN_VENDORS else 0
    count = min(setting, vendors, concurrency)
    return count if count >= 2 else 0


def plan(vendors: Sequence[Vendor], count: int, per_host: int) -> tuple[list[list[int]], int]:
    """Split vendors between ``count`` workers; returns each worker's vendor positions and the
    per-host limit each worker applies.

    When ``per_host`` allows it, every worker takes a share of every host and a limit of
    ``per_host // count``, so the workers together never exceed ``per_host``. Otherwise all the
    vendors of one host go to the same worker, which applies ``per_host`` itself; hosts are
    dealt largest first to the least loaded worker.
    """
    if per_host >= count:
        shares = [list(range(k, len(vendors), count)) for k in range(count)]
        return [s for s in shares if s], per_host // count
    by_host: dict[str, list[int]] = {}
    for i, v in enumerate(vendors):
        by_host.setdefault(host_key(v.url), []).append(i)
    shards: list[list[int]] = [[] for _ in range(count)]
    for group in sorted(by_host.values(), key=len, reverse=True):
        min(shards, key=len).extend(group)
    return [sorted(s) for s in shards if s], per_host


def _start_method() -> str:
    """Fork where it is safe: a worker then starts with everything already imported, where a
    spawned one spends about 0.3 s of CPU importing. A parent with other threads (a progress
    bar, a test server) could fork while one of them holds a lock, so it spawns instead, as on
    platforms without a safe fork (macOS)."""
    if "fork" in multiprocessing.get_all_start_methods() and sys.platform == "linux":
        if threading.active_count() == 1:
            return "fork"
    return "spawn"


def in_processes(
    options: FetchOptions,
    vendors: Sequence[Vendor],
    states: Sequence[VendorState],
    count: int,
    stop: Flag | None = None,
    browser: BrowserOptions | None = None,
) -> Outcomes:
    """Fetch and parse in ``count`` worker processes; yield (position, outcome) as each arrives.
    A worker that meets a page to render starts its own browser with ``browser``.

    A worker that dies leaves its remaining vendors as errors (checked again next run), never
    as pages without entities. The workers stop taking new vendors once ``stop`` is set.
    """
    shards, per_host = plan(vendors, count, options.per_host)
    share = replace(options, concurrency=max(1, options.concurrency // len(shards)), per_host=per_host)
    method = _start_method()
    ctx: Any = multiprocessing.get_context(method)  # typeshed: BaseContext has no Process
    if method == "fork":
        load_tls_for(v.url for v in vendors)  # once here, not once in every worker
    log.info("%d vendors fetched and parsed in %d worker processes (%s)", len(vendors), len(shards), method)
    halt = ctx.Event()
    running: dict[Connection, tuple[Any, set[int]]] = {}  # reader -> (process, positions not yet reported)
    try:
        for shard in shards:
            reader, writer = ctx.Pipe(duplex=False)
            _widen(writer)
            args = (writer, share, [vendors[i] for i in shard], [states[i] for i in shard], shard, halt, browser)
            proc = ctx.Process(target=_worker, args=args, name="pw-worker", daemon=True)
            with _sigint_held():
                proc.start()
            writer.close()
            running[reader] = (proc, set(shard))
        while running:
            if stop is not None and stop.is_set():
                halt.set()
            for ready in wait_ready(list(running), timeout=0.5):
                assert isinstance(ready, Connection)
                reader = ready
                proc, pending = running[reader]
                try:
                    data = reader.recv_bytes()
                except (EOFError, OSError):
                    data = None
                if data is None or data == _END:
                    del running[reader]
                    reader.close()
                    _reap([proc], timeout=10)
                    if data is None and not halt.is_set() and not (stop is not None and stop.is_set()):
                        log.warning("a worker process ended early (exit code %s)", proc.exitcode)
                        for i in sorted(pending):
                            why = f"worker process ended early (exit code {proc.exitcode}); checked next run"
                            yield i, WorkerLost(f"{vendors[i].name}: {why}")
                    continue
                i, got = _loads(data)
                pending.discard(i)
                yield i, (Fetched(vendors[i], states[i], *got) if isinstance(got, tuple) else got)
    finally:  # normally nothing is left running; after an error or Ctrl-C, stop the workers
        halt.set()
        for reader in running:
            # Nothing more will be read. A worker waiting to send gets a broken pipe, unless a
            # worker forked after it holds a copy of this end: then _reap stops it.
            reader.close()
        _reap([proc for proc, _ in running.values()], timeout=0.5)


@contextlib.contextmanager
def _sigint_held() -> Generator[None, None, None]:
    """Block SIGINT while a worker starts: the worker inherits the blocked signal, so a Ctrl-C
    to the terminal's process group never reaches it, even before it could ignore the signal (a
    spawned worker spends about 0.3 s importing, and died of a Ctrl-C then, or printed its
    traceback). This process gets the Ctrl-C as soon as the worker is started. (multiprocessing
    starts its resource tracker the same way.)"""
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _reap(procs: list[Any], timeout: float) -> None:
    """Wait for worker processes to end, together for at most ``timeout`` seconds, then kill them
    (SIGTERM only makes a worker finish what it has; nothing it holds is needed any more)."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join()


def _widen(conn: Connection) -> None:
    """Give a worker's pipe room for about a dozen pages (Linux; 64 KB otherwise). A worker then
    goes on while this process records, instead of waiting for every page to be read: first runs
    of 1,000 pages took 2.29 s against 2.48 s (means of 9 alternating runs)."""
    with contextlib.suppress(ImportError, AttributeError, OSError):  # not Linux, or over the system maximum
        import fcntl

        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def _worker(
    conn: Connection,
    options: FetchOptions,
    vendors: list[Vendor],
    states: list[VendorState],
    positions: list[int],
    halt: Flag,
    browser: BrowserOptions | None = None,
) -> None:
    """A worker process: fetch and parse its vendors, send each outcome to the parent."""
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the parent decides.
    # On SIGTERM a worker starts no new vendor and reports the ones it has started, as in a
    # stopped run; unless the parent stopped too, it reports the others as lost (checked next run).
    terminated = _Terminated(halt)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, terminated.handle)  # not the daemon's handler a fork inherits
    try:
        with Fetcher(options) as fetcher, Browser(browser or BrowserOptions()) as renderer:
            sender = _Sender(conn, fetcher, vendors, states, positions, terminated, options.concurrency)
            sender.renderer = renderer
            sender.run()
        # Without the end mark, the parent reports what this worker did not send as lost.
        if not (sender.parent_gone or sender.thread_died) and (halt.is_set() or not terminated.signalled):
            conn.send_bytes(_END)
    except BrokenPipeError:  # the parent is gone
        pass
    finally:
        conn.close()


class _Sender:
    """A worker's threads. Each takes the next vendor, fetches and parses it, and sends the outcome
    to the parent itself. No thread sits between them and the pipe: a coordinating thread woke
    once more per page and took the interpreter lock once more (a first run of 1,000 pages made
    about 11,500 context switches with one and 8,600 without, and used about 13% more CPU time:
    ``perf stat``, 5 alternating runs each). A thread holds one vendor at a time.

    A worker starts with one thread and adds threads, up to its share of ``concurrency``, while
    its threads wait on the network: one more each time a vendor's wait (wall time less the
    thread's CPU time) averages over twice its CPU time while a core is spare (``IdleCpu``), and
    twice as many when no vendor has finished for ``TICK`` seconds (slow or silent servers).
    Threads are never taken away, so a worker fills its share within a few ticks of slow pages.
    Where answers come faster than they can be parsed (a mirror on the same network), one thread
    avoids handing the interpreter lock back and forth: a first run of 1,000 local pages took
    1.53 s and 2.53 s of CPU against 1.67 s and 2.79 s with every thread started at once (6
    alternating runs each)."""

    TICK = 0.1
    renderer: Renderer | None = None
    _SMOOTHING = 0.3  # weight of the newest vendor in the running averages
    _WARM_UP = 2  # vendors seen before the averages count

    def __init__(
        self,
        conn: Connection,
        fetcher: Fetcher,
        vendors: list[Vendor],
        states: list[VendorState],
        positions: list[int],
        stop: Flag,
        threads: int,
    ) -> None:
        self.conn, self.fetcher, self.stop = conn, fetcher, stop
        self.vendors, self.states, self.positions = vendors, states, positions
        self.parent_gone = False
        self.thread_died = False  # by an exception that is not a vendor's (SystemExit, say)
        self.threads: list[threading.Thread] = []
        self._most = max(1, min(threads, len(vendors)))
        self._todo = iter(range(len(vendors)))
        self._drained = False
        self._take = threading.Lock()
        self._send = threading.Lock()
        self._grow = threading.Lock()
        self._finished = 0
        self._running = 0
        self._idle = IdleCpu()
        self._wait: float | None = None  # running averages of a vendor's waiting and CPU seconds
        self._work = 0.0

    def run(self) -> None:
        """Start the first thread; until every thread has ended, add one after each ``TICK`` in
        which no vendor finished. A thread that died leaves its place to a new one while vendors
        are left (its own vendor is reported lost by the parent)."""
        self._add_thread()
        seen = 0
        while True:
            with self._grow:
                alive = next((thread for thread in self.threads if thread.is_alive()), None)
            if alive is None and not self._add_thread():
                return
            if alive is not None:
                alive.join(self.TICK)
            if self._finished == seen:  # every thread is waiting: double them
                for _ in range(max(1, self._running)):
                    self._add_thread()
            seen = self._finished

    def _add_thread(self) -> bool:
        with self._grow:
            alive = sum(thread.is_alive() for thread in self.threads)
            if alive >= self._most or self._drained or self.parent_gone or self.stop.is_set():
                return False
            thread = threading.Thread(target=self._loop, name="pw-fetch", daemon=True)
            self.threads.append(thread)
            thread.start()
            return True

    def _next(self) -> int | None:
        if self.parent_gone or self.stop.is_set():
            return None
        with self._take:
            k = next(self._todo, None)
            if k is None:
                self._drained = True
            return k

    def _observe(self, wall: float, cpu: float) -> None:
        """Account one vendor's wall and CPU seconds in this thread; add a thread if the threads
        wait on the network more than twice as long as they work. With ``n`` threads running,
        each also waits about ``n - 1`` times its own work for the interpreter lock while the
        others work: that much waiting is no reason to add one (it would feed on itself)."""
        wait = max(0.0, wall - cpu)
        with self._grow:
            self._finished += 1
            if self._wait is None:
                self._wait, self._work = wait, cpu
            else:
                self._wait += self._SMOOTHING * (wait - self._wait)
                self._work += self._SMOOTHING * (cpu - self._work)
            waiting = self._finished >= self._WARM_UP and self._wait > (self._running + 1) * self._work
            waiting = waiting and self._idle.spare()
        if waiting:
            self._add_thread()

    def _loop(self) -> None:
        with self._grow:
            self._running += 1
        try:
            self._each()
        except BaseException:
            self.thread_died = True
            raise
        finally:
            with self._grow:
                self._running -= 1

    def _each(self) -> None:
        while (k := self._next()) is not None:
            start, cpu = time.monotonic(), time.thread_time()
            try:
                got: tuple[Any, ...] | Exception = fetch_and_parse(
                    self.fetcher, self.vendors[k], self.states[k], self.renderer
                ).for_transfer()
            except Exception as e:  # a bug in one vendor's handling stays that vendor's error
                got = e
            self._observe(time.monotonic() - start, time.thread_time() - cpu)
            data = _dumps(self.positions[k], got)
            try:
                with self._send:
                    self.conn.send_bytes(data)
            except OSError:  # the parent is gone (a broken pipe): nothing more is wanted
                self.parent_gone = True
                return


class IdleCpu:
    """Whether the machine had a spare half core since the last call, from ``/proc/stat``: when
    every core is busy (the server is local and starved, say), what looks like a wait for the
    network is a wait for CPU time, and more threads only add hand-offs of the interpreter lock.
    Where ``/proc/stat`` cannot be read, there is always a spare core."""

    PATH = "/proc/stat"
    _MIN_SECONDS = 0.05

    def __init__(self) -> None:
        self._last = self._sample()
        self._at = time.monotonic()
        self._spare = self._last is None  # until a first measure: no, unless there is none to take

    def spare(self) -> bool:
        """The verdict of the latest ``_MIN_SECONDS`` or more (the counters tick every 10 ms)."""
        now = time.monotonic()
        if self._last is None or now - self._at < self._MIN_SECONDS:
            return self._spare
        sample = self._sample()
        if sample is None:
            self._spare = True
            return True
        idle, total = sample[0] - self._last[0], sample[1] - self._last[1]
        self._last, self._at = sample, now
        self._spare = total > 0 and idle / total >= 0.5 / (os.cpu_count() or 1)
        return self._spare

    def _sample(self) -> tuple[int, int] | None:
        try:
            with open(self.PATH, "rb") as f:
                fields = f.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != b"cpu":
            return None
        ticks = [int(x) for x in fields[1:]]
        return ticks[3] + (ticks[4] if len(ticks) > 4 else 0), sum(ticks[:8])  # idle + iowait; all but guest


class _Terminated:
    """A worker's stop flag: the parent's ``halt``, or a SIGTERM of its own. The signal handler
    only sets an attribute: it may run while the main thread holds a lock."""

    def __init__(self, halt: Flag) -> None:
        self.halt = halt
        self.signalled = False

    def handle(self, signum: int, frame: object) -> None:
        self.signalled = True

    def is_set(self) -> bool:
        return self.signalled or self.halt.is_set()


def _dumps(position: int, got: tuple[Any, ...] | Exception) -> bytes:
    """One outcome for the parent: its position, then the pickled outcome. An exception that
    would not come back out of pickle (its arguments do not match its constructor) travels as
    its text."""
    head = struct.pack("<I", position)
    try:
        data = pickle.dumps(got, protocol=pickle.HIGHEST_PROTOCOL)
        if isinstance(got, BaseException):
            pickle.loads(data)
        return head + data
    except Exception:
        text = f"{type(got).__name__}: {got}" if isinstance(got, BaseException) else repr(got)
        return head + pickle.dumps(RuntimeError(text), protocol=pickle.HIGHEST_PROTOCOL)


def _loads(data: bytes) -> tuple[int, tuple[Any, ...] | Exception]:
    (position,) = struct.unpack_from("<I", data)
    try:
        return position, pickle.loads(memoryview(data)[4:])
    except Exception as e:  # the vendor's outcome is unreadable: that vendor is an error, not the run
        return position, RuntimeError(f"the outcome sent by a worker process could not be read: {e!r}")
