"""How parse, diff and a whole run grow with page size and with the share of rows changed.

One table of N rows (entity, purpose, country), from about 0.6 MB up to the default size cap
(10 MB). A later version changes a share of the rows: a third replaced by new names (removed
and added), a third renamed within their legal suffix ("Inc." -> "LLC"), a third with a new
country. Every figure comes from a fresh child process, so its peak memory is its own:

- parse + diff: ``parse_page`` of both versions and ``diff_pages``; time of each step and the
  peak RSS above the interpreter's RSS once the two page bodies were built;
- run (``--run``): ``python -m policy_watch run`` against the page served on 127.0.0.1, first
  the baseline, then the changed version; wall time and the child's peak RSS (``os.wait4``).

Linear growth shows as a flat "per MB" column. Prints a table per series.

    .venv/bin/python benchmarks/bench_scale.py            # parse + diff, about 2 minutes
    .venv/bin/python benchmarks/bench_scale.py --run      # and full runs, about 4 minutes more
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

_COUNTRIES = ("United States", "Germany", "Ireland", "France", "Japan")
SIZES = (7_500, 15_000, 30_000, 60_000, 120_000)  # 120,000 rows: 9.9 MB, under the 10 MiB cap
SHARES = (0.0, 0.1, 0.2, 0.4, 0.8)


def rows(n: int, share: float) -> list[tuple[str, str, str]]:
    """N rows; ``share`` of them changed (a third each: replaced, renamed, new country)."""
    out = []
    changed = 0
    for i in range(n):
        name, purpose, country = f"Vendor {i:06d} Inc.", f"Processing of kind {i % 37}", _COUNTRIES[i % 5]
        if int((i + 1) * share) > int(i * share):  # evenly spread: exactly int(n * share) rows
            kind = changed % 3
            changed += 1
            if kind == 0:
                name, purpose = f"Newcomer {i:06d} GmbH", "Hosting"
            elif kind == 1:
                name = f"Vendor {i:06d} LLC"
            else:
                country = _COUNTRIES[(i + 1) % 5]
        out.append((name, purpose, country))
    return out


def page(table: list[tuple[str, str, str]]) -> bytes:
    body = "".join(f"<tr><td>{e}</td><td>{p}</td><td>{c}</td></tr>\n" for e, p, c in table)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Subprocessors</title></head><body>'
        "<h1>Subprocessors</h1><p>Last updated: November 2, 2026</p><table><thead><tr><th>Entity Name</th>"
        f"<th>Purpose</th><th>Country</th></tr></thead><tbody>\n{body}</tbody></table></body></html>"
    ).encode()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def child(n: int, share: float) -> dict[str, float]:
    """Parse both versions and diff them; run in a fresh process by ``measure``."""
    from policy_watch.diff import diff_pages
    from policy_watch.parse import parse_page

    old_body, new_body = page(rows(n, 0.0)), page(rows(n, share))
    start = _rss_mb()
    t0 = time.perf_counter()
    old = parse_page(old_body)
    t1 = time.perf_counter()
    new = parse_page(new_body)
    t2 = time.perf_counter()
    changes = diff_pages(old, new)
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    assert len(new.entries) == n
    return {
        "rows": n,
        "share": share,
        "mb": len(new_body) / 1e6,
        "parse_s": t2 - t1,
        "first_parse_s": t1 - t0,
        "diff_s": t3 - t2,
        "peak_mb": peak - start,
        "changes": len(changes),
    }


def measure(n: int, share: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n), str(share)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def _quiet_handler(directory: str) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    return partial(Handler, directory=directory)  # type: ignore[return-value]


def run_cli(config: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS MB and the last output line of one ``policy-watch run``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "policy_watch", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    lines = [line for line in output.splitlines() if line.strip()]
    return time.perf_counter() - t0, usage.ru_maxrss / 1e3, lines[-1] if lines else ""


def full_runs(n: int, share: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        www = Path(tmp) / "www"
        www.mkdir()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _quiet_handler(str(www)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/subprocessors.html"
            config = Path(tmp) / "config.toml"
            config.write_text(
                f'[settings]\ndatabase = "{tmp}/pw.db"\nretries = 0\ntimeout = 60\n\n'
                f'[[vendors]]\nname = "Big Vendor"\nurl = "{url}"\n'
            )
            (www / "subprocessors.html").write_bytes(page(rows(n, 0.0)))
            first = run_cli(config)
            changed = page(rows(n, share))
            (www / "subprocessors.html").write_bytes(changed)
            os.utime(www / "subprocessors.html", (time.time() + 5, time.time() + 5))
            second = run_cli(config)
        finally:
            server.shutdown()
    return {"rows": n, "share": share, "mb": len(changed) / 1e6, "first": first, "second": second}


def _table(title: str, results: list[dict[str, float]]) -> None:
    print(f"\n{title}")
    print(
        "| rows | changed | page MB | parse s | s per MB | diff s | diff µs/row | peak MB | peak / page | changes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['rows']:,.0f} | {r['share']:.0%} | {r['mb']:.1f} | {r['parse_s']:.2f} | {r['parse_s'] / r['mb']:.2f} "
            f"| {r['diff_s']:.2f} | {1e6 * r['diff_s'] / r['rows']:.1f} | {r['peak_mb']:.0f} "
            f"| {r['peak_mb'] / r['mb']:.0f}x | {r['changes']:,.0f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("ROWS", "SHARE"), help=argparse.SUPPRESS)
    ap.add_argument("--run", action="store_true", help="also time full `policy-watch run`s on a local server")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=list(SIZES))
    ap.add_argument("--shares", type=lambda s: [float(x) for x in s.split(",")], default=list(SHARES))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), float(args.child[1]))))
        return
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; each point in a fresh process; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    _table("parse + diff by page size (40% of rows changed)", [measure(n, 0.4) for n in args.sizes])
    biggest = max(args.sizes)
    _table(f"parse + diff by share changed ({biggest:,} rows)", [measure(biggest, s) for s in args.shares])
    if args.run:
        print("\nfull `policy-watch run` on 127.0.0.1: baseline, then the changed page")
        print(
            "| rows | changed | page MB | first run s | first peak MB | second run s | second peak MB | second run says |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for n, share in [(n, 0.4) for n in args.sizes] + [(biggest, s) for s in args.shares if s != 0.4]:
            r = full_runs(n, share)
            (t1, m1, _), (t2, m2, said) = r["first"], r["second"]  # type: ignore[misc]
            print(
                f"| {n:,} | {share:.0%} | {r['mb']:.1f} | {t1:.1f} | {m1:.0f} | {t2:.1f} | {m2:.0f} | {said[:60]} |"
            )
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
