"""End-to-end benchmark: `policy-watch run` over 1,000 vendor pages served by nginx on loopback.

Measured in one go, against the same pages and server:
  * policy-watch: cold run (first snapshots), warm run (nothing changed), run with 10% changed;
  * urlwatch 2.29 (filters `css: table` + `html2text`): the same three runs;
  * the floor: the fastest plain httpx fetch of all pages (16 threads, one sync Client).
Each tool runs as its real CLI in a child process; wall time is measured around the child, CPU
time comes from its rusage (os.wait4, worker processes included) and peak memory is the larger of
its own peak RSS and the sampled peak PSS of its process tree, so runs do not mask each other.
Every scenario is run --repeats times (3) and the best run counts, as for the floor.

Usage:  .venv/bin/python benchmarks/bench_run.py [--vendors 1000] [--changed 0.1] [--server auto]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pages

URLWATCH_VERSION = "2.29"
CACHE_DIR = Path.home() / ".cache" / "policy-watch-bench"
WORKERS = 16  # policy-watch's default concurrency; urlwatch and the floor get the same


@dataclass
class Measured:
    label: str
    wall: float
    peak_mb: float
    cpu: float
    pages: int
    note: str = ""
    rc: int = 0

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.wall if self.wall else 0.0


@dataclass
class Server:
    kind: str  # "nginx" or "python ThreadingHTTPServer"
    port: int
    proc: subprocess.Popen[bytes]
    notes: list[str] = field(default_factory=list)

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/{_pages.page_file(Path('.'), i).name}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # nginx: SIGTERM = fast shutdown of master and workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- children with their own rusage ---------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """pid and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    return out


def _tree_pss_kib(pid: int) -> int:
    """Proportional set size of a process tree: pages shared after a fork count once in all."""
    return pss_kib(_tree(pid))


def pss_kib(pids: list[int]) -> int:
    """The summed proportional set size of these processes (Linux /proc), in KiB."""
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except (OSError, ValueError):
            pass
    return total


def run_child(
    label: str,
    cmd: list[str],
    log: Path,
    pages: int,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[Measured, str]:
    """Run cmd to completion; wall time around it, CPU from its rusage (worker processes included,
    once reaped), peak memory as the larger of its own peak RSS and the peak PSS of its whole
    process tree sampled every 20 ms (a run with worker processes uses several at once)."""
    peak_tree = [0]
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak_tree[0] = max(peak_tree[0], _tree_pss_kib(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    peak_mb = max(usage.ru_maxrss, peak_tree[0]) / 1024  # Linux: KiB
    return Measured(label, wall, peak_mb, usage.ru_utime + usage.ru_stime, pages, rc=proc.returncode), text


# --- the server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/ngx-body;
    proxy_temp_path {tmp}/ngx-proxy;
    fastcgi_temp_path {tmp}/ngx-fastcgi;
    uwsgi_temp_path {tmp}/ngx-uwsgi;
    scgi_temp_path {tmp}/ngx-scgi;
    types {{ text/html html; }}
    default_type text/html;
    charset utf-8;
    sendfile on;
    tcp_nopush on;
    etag on;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        root {www};
    }}
}}
"""


def start_nginx(tmp: Path, www: Path) -> Server | None:
    exe = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if exe is None:
        return None
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, www=www, port=port))
    # Workers may drop to an unprivileged user when started as root: let them read the pages.
    for d in (tmp, www):
        d.chmod(0o755)
    with open(tmp / "nginx-stderr.log", "wb") as errors:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [exe, "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    if not wait_listening(port, proc):
        proc.kill()
        proc.wait()
        print(f"nginx did not start; see {tmp / 'nginx-error.log'}", file=sys.stderr)
        return None
    version = (
        subprocess.run([exe, "-v"], capture_output=True, text=True)
        .stderr.strip()
        .replace("nginx version: ", "")
    )
    return Server(f"{version}, 1 worker", port, proc)


def start_python_server(www: Path) -> Server:
    port = free_port()
    # http.server's CLI serves with ThreadingHTTPServer; it sends Last-Modified (no ETag) and
    # answers If-Modified-Since with 304.
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(www), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not wait_listening(port, proc):
        proc.kill()
        raise SystemExit("could not start python -m http.server either")
    return Server("python ThreadingHTTPServer (fallback)", port, proc)


def start_server(kind: str, tmp: Path, www: Path) -> Server:
    if kind in ("auto", "nginx"):
        server = start_nginx(tmp, www)
        if server is not None:
            return server
        if kind == "nginx":
            raise SystemExit("nginx requested but it could not be started")
        print(
            "nginx not found. Install it for the reference figures:\n"
            "    sudo apt-get update && sudo apt-get install -y nginx      (Debian/Ubuntu)\n"
            "    brew install nginx                                         (macOS)\n"
            "Falling back to Python's ThreadingHTTPServer: figures are NOT comparable with nginx ones."
        )
    return start_python_server(www)


# --- the workload ----------------------------------------------------------------------------------


def rewrite(www: Path, pages: list[_pages.VendorPage]) -> None:
    """Write pages and move their mtime forward, so the server's ETag and Last-Modified change."""
    _pages.write_pages(www, pages)
    later = time.time() + 2
    for p in pages:
        os.utime(_pages.page_file(www, p.index), (later, later))


def changed_pages(base: list[_pages.VendorPage], share: float) -> list[_pages.VendorPage]:
    rng = random.Random("bench-run-changes")
    picked = sorted(rng.sample(range(len(base)), round(share * len(base))))
    return [_pages.mutate(base[i], rng, date.today()) for i in picked]


# --- policy-watch ----------------------------------------------------------------------------------


def pw_config(path: Path, db: Path, server: Server, n: int) -> None:
    lines = [
        "[settings]",
        f'database = "{db}"',
        f"concurrency = {WORKERS}",
        f"per_host = {WORKERS}   # every page is on one host here; real vendors are on different hosts",
        "",
    ]
    for i in range(n):
        lines += ["[[vendors]]", f'name = "{_pages.vendor_name(i)}"', f'url = "{server.url(i)}"', ""]
    path.write_text("\n".join(lines))


_SUMMARY = re.compile(r"checked (\d+) vendors: ([^;]*);")


def pw_run(label: str, work: Path, n: int) -> tuple[Measured, dict[str, int]]:
    cmd = [sys.executable, "-m", "policy_watch", "--config", str(work / "pw.toml"), "run"]
    m, out = run_child(label, cmd, work / f"{label.replace(' ', '_')}.log", n, cwd=work)
    found = _SUMMARY.search(out)
    counts = {}
    if found:
        for part in found.group(2).split(", "):
            k, _, v = part.partition(" ")
            counts[v] = int(k)
    if m.rc not in (0, 1) or not found:
        raise SystemExit(f"policy-watch {label} failed (exit {m.rc}):\n{out[-3000:]}")
    with sqlite3.connect(work / "pw.db") as db:  # one fetch row per vendor per run: the last n rows
        statuses = db.execute(
            "select status, count(*) from fetches where id > (select max(id) from fetches) - ?"
            " group by status order by status",
            [n],
        ).fetchall()
    m.note = (
        ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + " | HTTP "
        + ", ".join(f"{k}: {v}" for k, v in statuses)
    )
    return m, counts


# --- urlwatch --------------------------------------------------------------------------------------


def urlwatch_venv() -> Path:
    """A throwaway venv with urlwatch, cached across benchmark runs."""
    venv = CACHE_DIR / f"urlwatch-{URLWATCH_VERSION}-py{sys.version_info.major}.{sys.version_info.minor}"
    exe = venv / "bin" / "urlwatch"
    if exe.exists():
        return exe
    print(f"creating {venv} (pip install urlwatch=={URLWATCH_VERSION}) ...", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"urlwatch=={URLWATCH_VERSION}"],
        check=True,
    )
    return exe


URLWATCH_CONFIG = """\
display: {new: false, error: true, unchanged: false, empty-diff: false}
report:
  stdout: {enabled: false, color: false}
  email: {enabled: false}
job_defaults:
  all: {}
  url: {}
"""

# urlwatch 2.29 runs jobs in a ThreadPoolExecutor sized by the module constant
# urlwatch.worker.MAX_WORKERS (10); the hooks file is imported before jobs run.
URLWATCH_HOOKS = f"""\
import urlwatch.worker
urlwatch.worker.MAX_WORKERS = {WORKERS}
"""


def uw_files(work: Path, server: Server, n: int) -> None:
    jobs = [
        f"name: v{i:04d}\nurl: {server.url(i)}\nfilter:\n  - css: table\n  - html2text\n" for i in range(n)
    ]
    (work / "jobs.yaml").write_text("---\n".join(jobs))
    (work / "cfg.yaml").write_text(URLWATCH_CONFIG)
    (work / "hooks.py").write_text(URLWATCH_HOOKS)
    for name in ("jobs.yaml", "cfg.yaml", "hooks.py"):
        (work / name).chmod(0o600)  # urlwatch refuses shell jobs from group/world-writable files


def uw_run(label: str, exe: Path, work: Path, n: int) -> Measured:
    cmd = [
        str(exe),
        "--urls",
        "jobs.yaml",
        "--config",
        "cfg.yaml",
        "--hooks",
        "hooks.py",
        "--cache",
        "cache.db",
    ]
    env = {
        **os.environ,
        "HOME": str(work / "home"),
        "XDG_CONFIG_HOME": str(work / "home" / ".config"),
        "XDG_CACHE_HOME": str(work / "home" / ".cache"),
    }
    m, out = run_child(label, cmd, work / f"{label.replace(' ', '_')}.log", n, env=env, cwd=work)
    if m.rc != 0:
        raise SystemExit(f"urlwatch {label} failed (exit {m.rc}):\n{out[-3000:]}")
    db = sqlite3.connect(work / "cache.db")
    total, jobs = db.execute("select count(*), count(distinct guid) from CacheEntry").fetchone()
    failing = db.execute(
        "select count(*) from CacheEntry c where tries > 0 and timestamp = "
        "(select max(timestamp) from CacheEntry where guid = c.guid)"
    ).fetchone()[0]
    m.note = f"cache: {jobs} jobs, {total} stored versions, {failing} failing"
    return m


# --- repeated runs ---------------------------------------------------------------------------------


def _drop(db: Path) -> None:
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        f.unlink(missing_ok=True)


def _copy_db(src: Path, dst: Path) -> None:
    _drop(dst)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    b.close()
    a.close()


def best_of(repeats: int, once: Callable[[], Measured]) -> Measured:
    runs = [once() for _ in range(repeats)]
    best = min(runs, key=lambda m: m.wall)
    if repeats > 1:
        walls = ", ".join(f"{m.wall:.2f}" for m in runs)
        best.note += f" | best of {repeats}: {walls} s"
    print(f"  {best.label}: {best.wall:.2f} s, {best.peak_mb:.0f} MB ({best.note})", flush=True)
    return best


def three_runs(
    tool: str,
    run: Callable[[str], Measured],
    db: Path,
    www: Path,
    changed: list[_pages.VendorPage],
    repeats: int,
) -> list[Measured]:
    """A tool's cold, warm and 10%-changed runs, each the best of ``repeats`` (the floor is too).
    Every cold run starts without a database; every changed run from a copy of the database the
    warm runs left, so each repetition does the same work."""

    def cold() -> Measured:
        _drop(db)
        return run(f"{tool} cold")

    out = [best_of(repeats, cold), best_of(repeats, lambda: run(f"{tool} warm"))]
    saved = db.with_name(db.name + ".before-changes")
    _copy_db(db, saved)
    rewrite(www, changed)

    def after_changes() -> Measured:
        _copy_db(saved, db)
        return run(f"{tool} 10% changed")

    out.append(best_of(repeats, after_changes))
    return out


# --- the floor -------------------------------------------------------------------------------------


def floor_worker(url_file: str) -> None:
    """Child mode: fetch every URL once, 16 threads over one sync httpx Client, no processing."""
    import httpx

    urls = Path(url_file).read_text().split()
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    start = time.perf_counter()
    with httpx.Client(limits=limits, trust_env=False) as client, ThreadPoolExecutor(WORKERS) as pool:

        def get(url: str) -> int:
            r = client.get(url)
            r.raise_for_status()
            return len(r.content)

        sizes = list(pool.map(get, urls))
    print(json.dumps({"fetch_s": time.perf_counter() - start, "bytes": sum(sizes), "pages": len(sizes)}))


def floor_run(work: Path, server: Server, n: int, repeats: int) -> tuple[Measured, float]:
    url_file = work / "urls.txt"
    url_file.write_text("\n".join(server.url(i) for i in range(n)))
    best: Measured | None = None
    best_inner = float("inf")
    for k in range(repeats):
        m, out = run_child(
            "floor", [sys.executable, __file__, "--floor-worker", str(url_file)], work / f"floor{k}.log", n
        )
        if m.rc != 0:
            raise SystemExit(f"floor fetch failed:\n{out[-3000:]}")
        got = json.loads(out.strip().splitlines()[-1])
        if got["pages"] != n:
            raise SystemExit(f"floor fetched {got['pages']} pages, expected {n}")
        best_inner = min(best_inner, got["fetch_s"])
        if best is None or m.wall < best.wall:
            best = m
    assert best is not None
    best.note = f"best of {repeats}; fetch alone (no interpreter start-up, imports) {best_inner:.2f} s"
    return best, best_inner


# --- report ----------------------------------------------------------------------------------------


def ratio_line(name: str, a: float, b: float, target: str, ok: bool) -> str:
    return f"  {name:<34} {a / b:6.2f}   target {target:<8} {'ok' if ok else 'MISSED'}"


def report(rows: list[Measured], server: Server, n: int, page_bytes: int, floor_inner: float) -> None:
    print()
    print(
        f"date {date.today()} | {platform.node()} | {os.cpu_count()} cores | Python {platform.python_version()}"
        f" | server: {server.kind} on 127.0.0.1:{server.port}"
    )
    print(f"{n} pages, {page_bytes / n / 1024:.1f} KiB mean; wall includes interpreter start-up and imports")
    print()
    print(f"{'run':<24} {'wall s':>8} {'pages/s':>9} {'peak MB':>8} {'CPU s':>7}  notes")
    for m in rows:
        print(f"{m.label:<24} {m.wall:8.2f} {m.pages_per_s:9.0f} {m.peak_mb:8.1f} {m.cpu:7.2f}  {m.note}")
    by = {m.label: m for m in rows}
    print()
    print("ratios")
    for run in ("cold", "warm", "10% changed"):
        pw, uw = by.get(f"policy-watch {run}"), by.get(f"urlwatch {run}")
        if pw and uw:
            r = pw.wall / uw.wall
            print(ratio_line(f"policy-watch/urlwatch {run}", pw.wall, uw.wall, "<= 0.5", r <= 0.5))
    floor = by.get("floor (httpx, 16 thr)")
    if floor:
        for run, target in (("cold", 2.0), ("warm", 1.0)):
            pw = by.get(f"policy-watch {run}")
            if pw:
                print(
                    ratio_line(
                        f"policy-watch {run}/floor",
                        pw.wall,
                        floor.wall,
                        f"<= {target:g}",
                        pw.wall / floor.wall <= target,
                    )
                )
    peak = max((m.peak_mb for m in rows if m.label.startswith("policy-watch")), default=0.0)
    print(
        f"  {'policy-watch peak memory':<34} {peak:6.1f} MB target < 150 MB {'ok' if peak < 150 else 'MISSED'}"
    )
    if server.kind.startswith("python"):
        print(
            "\nNOTE: served by Python's ThreadingHTTPServer (nginx missing or --server python); not the reference setup."
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vendors", type=int, default=1000)
    ap.add_argument("--changed", type=float, default=0.10, help="share of pages changed in the third run")
    ap.add_argument("--server", choices=("auto", "nginx", "python"), default="auto")
    ap.add_argument("--floor-repeats", type=int, default=3)
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each policy-watch and urlwatch scenario; the best counts",
    )
    ap.add_argument("--skip-urlwatch", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (pages, configs, databases, logs)")
    ap.add_argument("--floor-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.floor_worker:
        floor_worker(args.floor_worker)
        return

    n = args.vendors
    import compileall

    import policy_watch

    # What pip does when it installs a package; an editable install under PYTHONDONTWRITEBYTECODE
    # would otherwise compile every module again in every run.
    compileall.compile_dir(Path(policy_watch.__file__).parent, quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    www, pw_dir, uw_dir = tmp / "www", tmp / "policy-watch", tmp / "urlwatch"
    for d in (pw_dir, uw_dir, uw_dir / "home"):
        d.mkdir(parents=True)
    t = time.perf_counter()
    base = [_pages.make_vendor(i) for i in range(n)]
    page_bytes = _pages.write_pages(www, base)
    changed = changed_pages(base, args.changed)
    print(
        f"generated {n} pages ({page_bytes / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s into {www}",
        flush=True,
    )
    server = start_server(args.server, tmp, www)
    print(f"server: {server.kind} on port {server.port}", flush=True)
    rows: list[Measured] = []
    try:
        floor, floor_inner = floor_run(tmp, server, n, args.floor_repeats)
        rows.append(floor)
        floor.label = "floor (httpx, 16 thr)"
        print(f"  floor {floor.wall:.2f} s", flush=True)

        pw_config(pw_dir / "pw.toml", pw_dir / "pw.db", server, n)
        rows += three_runs(
            "policy-watch",
            lambda label: pw_run(label, pw_dir, n)[0],
            pw_dir / "pw.db",
            www,
            changed,
            args.repeats,
        )

        if not args.skip_urlwatch:
            rewrite(www, base)  # back to the original pages, with fresh validators
            exe = urlwatch_venv()
            uw_files(uw_dir, server, n)
            rows += three_runs(
                "urlwatch",
                lambda label: uw_run(label, exe, uw_dir, n),
                uw_dir / "cache.db",
                www,
                changed,
                args.repeats,
            )
    finally:
        server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(rows, server, n, page_bytes, floor_inner)


if __name__ == "__main__":
    main()
