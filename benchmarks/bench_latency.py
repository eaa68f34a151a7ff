"""Latency benchmark: `policy-watch run` over pages that come back slowly, from many hosts.

Real vendor pages come from hundreds of distant hosts, 50-300 ms away; loopback hides that.
Here 1,000 pages are spread over 20 loopback addresses (127.0.0.2-127.0.0.21, each its own host
for the per-host limits) and a small asyncio server holds every response back (100 ms by
default), 304s included. It answers ``If-None-Match`` as nginx does.

Measured in one go, against the same server:
  * the floor: a plain fetch of every URL, 16 threads over one httpx Client;
  * policy-watch with its default settings: a cold run (first snapshots) and an unchanged run;
  * the same with other settings, if asked (``--also LABEL=SETTINGS``).
Each scenario is the best of --repeats runs (3).

``--cpu N`` measures something else: the CPU time (``time.process_time``) the fetcher spends per
request, fetching N small pages one after another from the same server with no delay, first in
full (200) and then conditionally (304), the best of --repeats rounds. The server runs in
another process, so only the fetching side is counted. To compare two versions of the code, run
it once per version (``PYTHONPATH=other/src``).

Usage:  .venv/bin/python benchmarks/bench_latency.py [--vendors 1000] [--delay 0.1] [--hosts 20]
        .venv/bin/python benchmarks/bench_latency.py --cpu 2000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pages
import bench_run

WORKERS = 16


# --- the slow server (child mode) --------------------------------------------------------------------


def serve(www: str, port: int, hosts: int, delay: float) -> None:
    root = Path(www)
    cache: dict[str, tuple[bytes, str]] = {}

    def page(path: str) -> tuple[bytes, str] | None:
        f = root / path.lstrip("/")
        if not f.is_file():
            return None
        st = f.stat()
        key = f"{path}:{st.st_mtime_ns}"
        if key not in cache:
            body = f.read_bytes()
            cache[key] = (body, '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"')
        return cache[key]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
                }
                await asyncio.sleep(delay)
                got = page(path)
                if got is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                elif headers.get("if-none-match") == got[1]:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {got[1]}\r\n\r\n".encode())
                else:
                    writer.write(
                        f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nETag: {got[1]}\r\n"
                        f"Content-Length: {len(got[0])}\r\n\r\n".encode()
                        + got[0]
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = [
            await asyncio.start_server(handle, f"127.0.0.{2 + h}", port, backlog=1024) for h in range(hosts)
        ]
        print("ready", flush=True)
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def url(port: int, hosts: int, i: int) -> str:
    return f"http://127.0.0.{2 + i % hosts}:{port}/{_pages.page_file(Path('.'), i).name}"


def start_server(www: Path, port: int, hosts: int, delay: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(www), str(port), str(hosts), str(delay)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise SystemExit("the slow server did not start")
    return proc


def cpu_per_request(n: int, repeats: int) -> None:
    """CPU seconds per request of ``Fetcher.fetch``, sequential, in this process."""
    from policy_watch import fetch

    with tempfile.TemporaryDirectory(prefix="pw-cpu-") as tmp:
        www = Path(tmp)
        for i in range(n):
            row = f"<tr><td>Vendor {i} Inc.</td><td>Hosting</td><td>United States</td></tr>"
            (www / f"p{i}.html").write_text(f"<html><body><table>{row * 40}</table></body></html>")
        port = bench_run.free_port()
        server = start_server(www, port, 1, 0.0)
        urls = [f"http://127.0.0.2:{port}/p{i}.html" for i in range(n)]
        best: dict[str, list[float]] = {"200": [], "304": []}
        try:
            with fetch.Fetcher() as fetcher:
                etags = [fetcher.fetch(u).etag for u in urls[:50]]  # warm up: imports, connections
                for _ in range(repeats):
                    t0 = time.process_time()
                    etags = [fetcher.fetch(u).etag for u in urls]
                    t1 = time.process_time()
                    got = [fetcher.fetch(u, etag=e) for u, e in zip(urls, etags, strict=True)]
                    t2 = time.process_time()
                    assert all(r.not_modified for r in got)
                    best["200"].append((t1 - t0) / n)
                    best["304"].append((t2 - t1) / n)
        finally:
            server.terminate()
            server.wait()
    print(f"{fetch.__file__}: {n} requests a round, {repeats} rounds, CPU per request (best; all rounds)")
    for kind, runs in best.items():
        print(f"  {kind}: {min(runs) * 1e6:.0f} us ({', '.join(f'{r * 1e6:.0f}' for r in runs)})")


# --- runs --------------------------------------------------------------------------------------------


def floor(work: Path, urls: list[str], repeats: int) -> float:
    url_file = work / "urls.txt"
    url_file.write_text("\n".join(urls))
    walls = []
    for k in range(repeats):
        m, out = bench_run.run_child(
            "floor",
            [sys.executable, bench_run.__file__, "--floor-worker", str(url_file)],
            work / f"floor{k}.log",
            len(urls),
        )
        got = json.loads(out.strip().splitlines()[-1])
        if m.rc != 0 or got["pages"] != len(urls):
            raise SystemExit(f"floor fetch failed:\n{out[-2000:]}")
        walls.append(m.wall)
    print(f"  floor: {min(walls):.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)})", flush=True)
    return min(walls)


def pw(work: Path, label: str, urls: list[str], extra: str, repeats: int) -> tuple[float, float, float]:
    """Best cold and best unchanged wall time, and the peak memory, of one configuration."""
    d = work / label
    d.mkdir()
    lines = ["[settings]", f'database = "{d / "pw.db"}"', extra, ""]
    for i, u in enumerate(urls):
        lines += ["[[vendors]]", f'name = "{_pages.vendor_name(i)}"', f'url = "{u}"', ""]
    (d / "pw.toml").write_text("\n".join(lines))
    cmd = [sys.executable, "-m", "policy_watch", "--config", str(d / "pw.toml"), "run"]
    results: dict[str, list[bench_run.Measured]] = {"cold": [], "unchanged": []}
    for k in range(repeats):
        bench_run._drop(d / "pw.db")
        for kind in ("cold", "unchanged"):
            m, out = bench_run.run_child(f"{label} {kind}", cmd, d / f"{kind}{k}.log", len(urls), cwd=d)
            if m.rc != 0 or "checked" not in out:
                raise SystemExit(f"policy-watch {label} {kind} failed (exit {m.rc}):\n{out[-2000:]}")
            results[kind].append(m)
    best = {k: min(v, key=lambda m: m.wall) for k, v in results.items()}
    for kind, runs in results.items():
        b = best[kind]
        print(
            f"  {label} {kind}: {b.wall:.2f} s, CPU {b.cpu:.2f} s, {b.peak_mb:.0f} MB "
            f"(runs {', '.join(f'{m.wall:.2f}' for m in runs)})",
            flush=True,
        )
    peak = max(m.peak_mb for v in results.values() for m in v)
    return best["cold"].wall, best["unchanged"].wall, peak


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vendors", type=int, default=1000)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--delay", type=float, default=0.1, help="seconds each response is held back")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="LABEL=SETTINGS",
        help='another configuration, e.g. "few=concurrency = 4"',
    )
    ap.add_argument("--cpu", type=int, metavar="N", help="CPU time per request over N small pages")
    ap.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), int(args.serve[2]), float(args.serve[3]))
        return
    if args.cpu:
        cpu_per_request(args.cpu, args.repeats)
        return
    n = args.vendors
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; {n} pages over "
        f"{args.hosts} hosts, {args.delay * 1000:.0f} ms per response",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="pw-latency-") as tmp:
        work = Path(tmp)
        www = work / "www"
        www.mkdir()
        size = _pages.write_pages(www, [_pages.make_vendor(i) for i in range(n)])
        print(f"pages: {size / n / 1024:.0f} KB each", flush=True)
        port = bench_run.free_port()
        server = start_server(www, port, args.hosts, args.delay)
        try:
            urls = [url(port, args.hosts, i) for i in range(n)]
            t0 = time.perf_counter()
            fl = floor(work, urls, args.repeats)
            configs = [("default", "")] + [tuple(a.split("=", 1)) for a in args.also]  # type: ignore[misc]
            rows = [(label, *pw(work, label, urls, extra, args.repeats)) for label, extra in configs]
        finally:
            server.terminate()
            server.wait()
    print(f"\nfloor {fl:.2f} s (16 threads, plain httpx); targets: cold <= 1.10x, unchanged <= 1.05x")
    for label, cold, warm, peak in rows:
        print(
            f"{label:>10}: cold {cold:.2f} s = {cold / fl:.2f}x floor, unchanged {warm:.2f} s = "
            f"{warm / fl:.2f}x floor, peak {peak:.0f} MB"
        )
    print(f"(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
