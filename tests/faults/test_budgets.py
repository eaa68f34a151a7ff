"""Budget faults: pages whose size or shape would make parsing or diffing take unbounded time.

Each case either reads the page in time or refuses it with an error naming the vendor; the
other vendor's run is not held up. Costs measured as they grow are in benchmarks/bench_scale.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from faultkit import World, respond

from policy_watch.diff import diff_entries
from policy_watch.errors import ParseError
from policy_watch.models import ChangeKind, Entry
from policy_watch.parse import parse_page

# Generous: each case below takes well under a second now, and minutes without its budget.
SECONDS = 60


def _page(table_attrs: str = "", rows: str = "", before: str = "") -> bytes:
    return (
        "<!DOCTYPE html><html><head><title>Subprocessors</title></head><body><h2>Subprocessors</h2>"
        f"{before}<table {table_attrs}><tr><th>Entity Name</th><th>Purpose</th><th>Country</th></tr>"
        f"{rows or '<tr><td>Acme, Inc.</td><td>Hosting</td><td>United States</td></tr>'}</table></body></html>"
    ).encode()


def _in_subprocess(code: str) -> str:
    """Run ``code`` in a fresh interpreter, failing the case if it is not done in SECONDS."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {SECONDS} s", pytrace=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_element_with_300000_attributes_is_refused_in_time(world: World) -> None:
    attrs = " ".join(f"a{i}=x" for i in range(300_000))
    hostile = respond(_page(attrs, before="<p>Our subprocessors</p>"))
    world.fault(
        lambda: world.serve_faulty(hostile),
        world.heal,
        status="suspect",
        cause=r"markup too costly to parse: an element with 300000 attributes",
    )


@pytest.mark.parametrize(
    "attr",
    ['a{i}=">"', "a{i}='<b x>'", "=a{i}", "a{i}/", "a{i} = v"],
    ids=["bracket", "tag", "equals", "slash", "spaced"],
)
def test_attributes_hidden_from_a_naive_scan_are_counted(attr: str) -> None:
    attrs = " ".join(attr.format(i=i) if i % 50 == 0 else f"a{i}" for i in range(60_000))
    with pytest.raises(ParseError, match="too costly"):
        parse_page(_page(attrs), source="https://example.test/sub")
    attrs = " ".join(attr.format(i=i) for i in range(60_000))
    with pytest.raises(ParseError, match="too costly"):
        parse_page(_page(attrs), source="https://example.test/sub")


def test_an_ordinary_number_of_attributes_is_read() -> None:
    attrs = " ".join(f"data-x{i}=y" for i in range(500))
    assert [e.entity for e in parse_page(_page(attrs)).entries] == ["Acme, Inc."]


def test_250_nested_tables_are_read_without_exhausting_the_stack() -> None:
    nested = "<table><tr><td><b>x</b>y" * 250 + "</td></tr></table>" * 250
    page = parse_page(
        _page(rows="<tr><td>Acme, <b>Inc</b>.</td><td>Hosting</td><td>US</td></tr>", before=nested)
    )
    assert [e.entity for e in page.entries] == ["Acme, Inc."]


def test_a_page_over_the_size_budget_is_refused() -> None:
    body = _page(rows="<tr><td>Acme</td><td>Hosting</td><td>US</td></tr>" * 100)
    with pytest.raises(ParseError, match=r"https://example.test/sub: page too large to parse: \d+ bytes"):
        parse_page(body, source="https://example.test/sub", max_bytes=len(body) - 1)
    assert parse_page(body, max_bytes=len(body)).entries


def test_a_page_over_the_time_budget_is_refused() -> None:
    body = _page(rows="<tr><td>Acme</td><td>Hosting</td><td>US</td></tr>" * 100)
    with pytest.raises(ParseError, match=r"https://example.test/sub: parsing took longer than 0 s"):
        parse_page(body, source="https://example.test/sub", seconds=0)


def test_diff_of_10000_rows_with_40_percent_replaced_and_renamed_ends_in_time() -> None:
    out = _in_subprocess("""
        from collections import Counter
        from policy_watch.diff import diff_entries
        from policy_watch.models import Entry
        old = [Entry("S", f"Vendor {i:05d} Inc.", f"Purpose {i % 7}", "US") for i in range(10_000)]
        new = [Entry("S", f"Other {i:05d} GmbH", "Hosting", "DE") if i % 5 < 2
               else Entry("S", f"Vendor {i:05d} LLC", f"Purpose {i % 7}", "US") if i % 5 == 2
               else e for i, e in enumerate(old)]
        print(sorted(Counter(c.kind.value for c in diff_entries(old, new)).items()))
    """)
    assert out.strip() == "[('added', 4000), ('removed', 4000), ('renamed', 2000)]"


def test_diff_of_thousands_of_namesakes_ends_in_time() -> None:
    out = _in_subprocess("""
        from collections import Counter
        from policy_watch.diff import diff_entries
        from policy_watch.models import Entry
        old = [Entry("S", "Acme", f"Purpose {i}", "US") for i in range(6_000)]
        new = [Entry("S", "Acme", f"Purpose {i}", "DE" if i % 3 == 0 else "US") for i in reversed(range(6_000))]
        print(sorted(Counter((c.kind.value, c.field) for c in diff_entries(old, new)).items()))
    """)
    assert out.strip() == "[(('changed', 'country'), 2000)]"


def test_a_page_that_changed_too_much_to_pair_is_plain_removed_and_added() -> None:
    # Every name of one core in two sections: past the pairing budget the rows that differ in
    # cells are not guessed at; nothing is lost (each old row removed, each new one added).
    old = [Entry("A", f"Acme {'Inc' if i % 2 else 'LLC'}", f"P{i}", "US") for i in range(300)]
    new = [Entry("B", f"Acme {'GmbH' if i % 2 else 'Ltd'}", f"Q{i}", "DE") for i in range(300)]
    changes = diff_entries(old, new)
    assert sum(c.kind is ChangeKind.REMOVED for c in changes) == 300
    assert sum(c.kind is ChangeKind.ADDED for c in changes) == 300


@pytest.mark.parametrize(
    ("unit", "depth"),
    [
        ("<div><p>Purpose: hosting</p><p>Location: US</p>", 12_000),
        ("<table><tr><td>Acme {i}<b>x</b>y", 12_000),
        ("<div><h3>Vendor {i}</h3><p>Vendor {i} does things</p>", 30_000),
    ],
    ids=["cards", "tables", "headings"],
)
def test_markup_nested_thousands_deep_ends_at_the_time_budget(unit: str, depth: int) -> None:
    body = "<html><head><title>Subprocessors</title></head><body><h1>Subprocessors</h1>" + "".join(
        unit.format(i=i) for i in range(depth)
    )
    cpu = time.thread_time()  # this thread's own work: what other processes do adds nothing to it
    with pytest.raises(ParseError, match=r"vendor-x: parsing took longer than 0.5 s; page refused"):
        parse_page(body, source="vendor-x", seconds=0.5)
    # The budget is checked often enough to end soon after it passes: at most about 4 s of work
    # here (on a loaded machine, 15 s of wall time), and without its checks 44 s.
    assert time.thread_time() - cpu < 15
