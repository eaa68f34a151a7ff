"""What reading countries and company names costs, next to parsing, on the real corpus pages.

Parses every page of ``shared/corpus/rendered`` (257 versions of 16 vendors' real pages), then
reads every entry's location cells (the country column and any extra column named location,
country or region) into codes and every entity name into its company, as ``changes``,
``entities`` and ``who`` do. Prints the time of each, best of ``--repeats``, and the ratio; and
the one-time cost of building the country tables (pycountry and its translations), which a
process pays once, on first use.

    python benchmarks/bench_meaning.py [--corpus ../shared/corpus/rendered] [--repeats 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from policy_watch.meaning.countries import _read_memo, gazetteer, read_location
from policy_watch.meaning.entities import alias_table, identify
from policy_watch.models import ParsedPage
from policy_watch.parse import parse_page

_LOCATION_WORDS = ("location", "country", "region")


def _parse_all(bodies: list[bytes]) -> list[ParsedPage]:
    pages = []
    for body in bodies:
        try:
            pages.append(parse_page(body, content_type="text/html; charset=utf-8"))
        except Exception:  # a page that is no list (the link-only GitHub page): nothing to read
            continue
    return pages


def _read_all(pages: list[ParsedPage], memo: bool = True) -> int:
    """Read every location cell and entity name; ``memo`` False reads each one afresh (no memo at all)."""
    gaz, table = gazetteer(), alias_table()
    _read_memo.cache_clear()  # every repetition starts with empty memos, as a new process does
    identify.cache_clear()
    read = gaz.read if memo else (lambda cell: read_location(cell, gaz))
    who = identify if memo else identify.__wrapped__
    n = 0
    for page in pages:
        for e in page.entries:
            read(e.country)
            for key, value in e.extra:
                if any(w in key.lower() for w in _LOCATION_WORDS):
                    read(value)
            who(e.entity, table, gaz)
            n += 1
    return n


def _best(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=here.parents[1] / "shared" / "corpus" / "rendered")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if not args.corpus.is_dir():
        args.corpus = Path("/work/shared/corpus/rendered")
    files = sorted(args.corpus.rglob("*.html"))
    bodies = [f.read_bytes() for f in files]
    cold = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from policy_watch.meaning.countries import gazetteer; t = time.perf_counter();"
            " gazetteer(); print(time.perf_counter() - t)",
            str(here / "src"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    pages = _parse_all(bodies)
    entries = _read_all(pages)  # warm the tables
    parse_s = _best(lambda: _parse_all(bodies), args.repeats)
    read_s = _best(lambda: _read_all(pages), args.repeats)
    fresh_s = _best(lambda: _read_all(pages, memo=False), args.repeats)
    print(f"corpus: {len(files)} pages, {len(pages)} with a list, {entries} entries")
    print(f"parse:                     {parse_s * 1000:8.1f} ms (best of {args.repeats})")
    for label, took in (("countries + company names", read_s), ("  the same, no memo      ", fresh_s)):
        print(
            f"{label}: {took * 1000:8.1f} ms (best of {args.repeats}) = {took / parse_s:.1%} of parse time,"
            f" {took / max(entries, 1) * 1e6:.1f} µs per entry"
        )
    print(f"one-time table build (fresh process): {float(cold.stdout) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
