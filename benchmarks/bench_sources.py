"""Benchmarks of the source layer: rendering, PDF reading, and the HTML path without a browser.

  * render: `policy-watch run` over N vendors with render = "browser" (default 100), each a local
    page whose script builds its table from a JSON endpoint. Pages per second over the whole run
    (browser start-up included) and the peak PSS of the run's process tree, Chromium included.
    Targets: at least 4 pages/s, under 600 MB.
  * pdf: reading a 47-page ruled table (fpdf2) with policy-watch's PDF reader against
    pdfplumber's own `extract_tables` over every page of the same file, alternating, best of
    --repeats. Target: at most 1.5 times its time.
  * html: `policy-watch run` over N plain HTML vendors; the process tree is sampled for any
    browser process, and the run's wall time is reported. Target: no browser started.

Usage:  .venv/bin/python benchmarks/bench_sources.py [--pages 100] [--repeats 5] [--only render|pdf|html]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))
import bench_run  # noqa: E402  (after the path is set)


def _tree(pid: int) -> list[int]:
    """pid and its descendants, whichever thread started them (/proc/PID/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


APP = """<!doctype html><html><head><title>Trust portal {n}</title></head><body><div id="app"></div>
<script>
fetch('/api/{n}.json').then(r => r.json()).then(rows => {{
  const t = document.createElement('table');
  t.innerHTML = '<tr><th>Subprocessor</th><th>Purpose</th><th>Location</th></tr>' +
    rows.map(r => `<tr><td>${{r.name}}</td><td>${{r.purpose}}</td><td>${{r.location}}</td></tr>`).join('');
  document.getElementById('app').appendChild(t);
}});
</script></body></html>"""
PLAIN = (
    "<html><head><title>Subprocessors {n}</title></head><body><h1>Subprocessors</h1><table>"
    "<tr><th>Subprocessor</th><th>Purpose</th><th>Location</th></tr>{rows}</table></body></html>"
)


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "name": f"Vendor {n}-{i} Inc.",
            "purpose": "Hosting" if i % 3 else "Analytics and support",
            "location": "United States" if i % 4 else "Ireland",
        }
        for i in range(25)
    ]


class Server:
    """In-memory pages on 127.0.0.1."""

    def __init__(self, pages: dict[str, tuple[bytes, str]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body, ctype = pages.get(self.path, (b"not found", "text/plain"))
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _config(folder: Path, urls: list[str], render: bool) -> Path:
    lines = ["[settings]", f'database = "{folder / "pw.db"}"', "retries = 0", ""]
    for i, url in enumerate(urls):
        lines += ["[[vendors]]", f'name = "Vendor {i}"', f'url = "{url}"']
        lines += ['render = "browser"', ""] if render else [""]
    path = folder / "config.toml"
    path.write_text("\n".join(lines))
    return path


def _run(config: Path) -> tuple[float, float, set[str], str, float]:
    """`policy-watch run` as a child: wall seconds, peak PSS MB of its tree, the names of the
    processes seen in the tree, its output, and the CPU seconds of the whole tree (rusage of
    the child, which includes every descendant reaped below it)."""
    cmd = [sys.executable, "-m", "policy_watch", "--config", str(config), "run"]
    peak, names, done = [0], set(), threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def sample() -> None:
        while not done.wait(0.1):
            pids = _tree(proc.pid)
            peak[0] = max(peak[0], bench_run.pss_kib(pids))
            for pid in pids:
                with contextlib.suppress(OSError):
                    names.add(Path(f"/proc/{pid}/comm").read_text().strip())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    proc.returncode = 0
    return wall, peak[0] / 1024, names, out, usage.ru_utime + usage.ru_stime


def bench_render(pages: int) -> None:
    site = {f"/app/{n}": (APP.format(n=n).encode(), "text/html; charset=utf-8") for n in range(pages)}
    site |= {f"/api/{n}.json": (json.dumps(_rows(n)).encode(), "application/json") for n in range(pages)}
    server = Server(site)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = _config(Path(tmp), [server.url(f"/app/{n}") for n in range(pages)], render=True)
            for label in ("first run (baselines)", "second run (nothing changed)"):
                wall, peak, names, out, cpu = _run(config)
                browsers = sorted(n for n in names if "chrom" in n.lower())
                print(
                    f"render {label}: {pages} pages in {wall:.2f} s = {pages / wall:.2f} pages/s; "
                    f"CPU {cpu:.1f} s ({cpu / pages:.2f} s a page); peak PSS of the process tree {peak:.0f} MB; "
                    f"browser processes seen: {len(browsers)} names {browsers}; load average {os.getloadavg()[0]:.1f}"
                )
                print("   ", out.strip().splitlines()[-1] if out.strip() else "(no output)")
    finally:
        server.close()


def bench_pdf(repeats: int) -> None:
    import pdfplumber
    from pdfmake import ruled

    from policy_watch.parse import parse_page

    rows = [
        (
            f"Sub-processor {i:04d} Limited",
            "Hosting and storage of customer data, backups and disaster recovery"
            if i % 5 == 0
            else "Hosting",
            "United States, Ireland, Germany" if i % 7 == 0 else "United States",
        )
        for i in range(1200)
    ]
    body = ruled([("Infrastructure", rows[:900]), ("Support", rows[900:])])
    with pdfplumber.open(io.BytesIO(body)) as pdf:
        count = len(pdf.pages)

    def theirs() -> int:
        with pdfplumber.open(io.BytesIO(body)) as pdf:
            return sum(len(t) for page in pdf.pages for t in page.extract_tables())

    def ours() -> int:
        return len(parse_page(body, content_type="application/pdf").entries)

    mine, base = [], []
    for _ in range(repeats):
        for fn, into in ((theirs, base), (ours, mine)):
            start = time.perf_counter()
            fn()
            into.append(time.perf_counter() - start)
    print(f"pdf: {count} pages, {len(body) // 1024} KB, {len(rows)} rows; entries read: {ours()}")
    print(f"    pdfplumber extract_tables: best {min(base):.3f} s, median {statistics.median(base):.3f} s")
    print(f"    policy-watch parse_page:   best {min(mine):.3f} s, median {statistics.median(mine):.3f} s")
    print(
        f"    ratio (best/best): {min(mine) / min(base):.2f}x; (median/median): "
        f"{statistics.median(mine) / statistics.median(base):.2f}x"
    )


def bench_html(pages: int) -> None:
    rows = "".join(f"<tr><td>Vendor {i} Inc.</td><td>Hosting</td><td>US</td></tr>" for i in range(40))
    site = {
        f"/p/{n}": (PLAIN.format(n=n, rows=rows).encode(), "text/html; charset=utf-8") for n in range(pages)
    }
    server = Server(site)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = _config(Path(tmp), [server.url(f"/p/{n}") for n in range(pages)], render=False)
            wall, peak, names, out, cpu = _run(config)
            browsers = sorted(n for n in names if "chrom" in n.lower() or "node" in n.lower())
            print(
                f"html: {pages} plain pages in {wall:.2f} s, CPU {cpu:.2f} s; peak PSS {peak:.0f} MB; "
                f"process names in the tree: {sorted(names)}; browser or driver processes: {browsers or 'none'}"
            )
            print("   ", out.strip().splitlines()[-1] if out.strip() else "(no output)")
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("render", "pdf", "html"))
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    if args.only in (None, "render"):
        bench_render(args.pages)
    if args.only in (None, "pdf"):
        bench_pdf(args.repeats)
    if args.only in (None, "html"):
        bench_html(args.pages)


if __name__ == "__main__":
    main()
