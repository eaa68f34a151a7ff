"""History storage: migrations in place, content addressing, queries, reparse, one run at a time."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pwtest import ZENDESK, PageServer, cli, recent, wait_for, write_config, zendesk_page
from sqlite_utils import Database

from policy_watch.errors import LockedError, StoreError
from policy_watch.models import Entry, ParsedPage
from policy_watch.store import Store, content_hash, migrations, run_lock
from policy_watch.store.part import query
from policy_watch.store.records import body_hash, pack_body

VENDOR = "Zendesk Connect"


def test_database_from_an_earlier_version_is_upgraded_in_place(tmp_path: Path) -> None:
    import zlib

    path = tmp_path / "old.db"
    db = Database(path)
    migrations.apply(db, stop_before="m002_runs")  # the first released schema
    db.table("vendors").insert(
        {"id": 1, "name": "Old Vendor", "url": "https://old.example/", "created_at": "2025-01-01"}
    )
    db.table("bodies").insert(
        {"hash": "h1", "content_type": "text/html", "size": 5, "body_zlib": zlib.compress(b"<p>x")}
    )
    db.table("snapshots").insert(
        {
            "id": 1,
            "vendor_id": 1,
            "content_hash": "c",
            "status": "good",
            "first_seen": "2025-01-01",
            "last_seen": "2025-01-02",
            "body_hash": "h1",
            "entry_count": 2,
            "columns": "[]",
        }
    )
    db.table("entries").insert_all(
        [
            {
                "snapshot_id": 1,
                "position": 0,
                "section": "S",
                "entity": "Acme Inc.",
                "purpose": "Hosting",
                "country": "US",
                "extra": "{}",
            },
            {
                "snapshot_id": 1,
                "position": 1,
                "section": "S",
                "entity": "Beta",
                "purpose": "Mail",
                "country": "IE",
                "extra": '{"Notes": "n"}',
            },
        ]
    )
    db.table("fetches").insert(
        {
            "vendor_id": 1,
            "started_at": "2025-01-01T07:00:00",
            "url": "https://old.example/",
            "final_url": "https://old.example/",
            "status": 200,
        }
    )
    db.conn.close()

    store = Store.open(path)
    try:
        applied = [m.name for m in migrations.applied(store.db)]
        assert applied == [m.name for m in migrations._migrations]
        snap = store.snapshots.get(1)
        assert [(e.entity, e.country, e.extra_dict) for e in snap.entries] == [
            ("Acme Inc.", "US", {}),
            ("Beta", "IE", {"Notes": "n"}),
        ]
        assert store.bodies.load("h1") == (b"<p>x", "text/html")
        assert query(store.db.conn, "select entity from entries order by position") == [
            {"entity": "Acme Inc."},
            {"entity": "Beta"},
        ]
        log = query(store.db.conn, "select url, final_url, status from fetch_log")
        assert log == [{"url": "https://old.example/", "final_url": "https://old.example/", "status": 200}]
        assert query(store.db.conn, "select count(*) as n from current_entries")[0]["n"] == 2
    finally:
        store.close()
    Store.open(path).close()  # opening again changes nothing


def test_bodies_are_stored_as_deltas_and_read_back(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "pw.db")
    page = (
        b"<html>"
        + b"".join(b"<tr><td>Vendor %d</td><td>Hosting</td></tr>" % i for i in range(2000))
        + b"</html>"
    )
    first = store.bodies.save(page, "text/html")
    changed = page.replace(b"Vendor 1000<", b"Vendor X<")
    second = store.bodies.save(changed, "text/html", previous=first)
    sizes = dict(store.db.conn.execute("select hash, length(data) from bodies").fetchall())
    assert sizes[second] < 300 < sizes[first], sizes
    assert store.bodies.load(second) == (changed, "text/html")
    assert store.bodies.load(first) == (page, "text/html")
    # A body compressed where it was fetched arrives without its bytes: stored as it came.
    third_body = page.replace(b"Vendor 7<", b"Vendor Y<")
    third = store.bodies.save(
        b"",
        "text/html",
        previous=second,
        packed=pack_body(third_body),
        hash_=body_hash(third_body),
        size=len(third_body),
    )
    assert store.bodies.load(third) == (third_body, "text/html")
    store.close()


def test_not_a_database_is_an_error_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    path.write_bytes(b"this is not sqlite" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_database_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "pw.db"
    Store.open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_content_hash_ignores_row_order() -> None:
    a = Entry("S", "A", "p", "US")
    b = Entry("S", "B", "q", "FR")
    assert content_hash(ParsedPage((a, b))) == content_hash(ParsedPage((b, a)))
    assert content_hash(ParsedPage((a, b))) != content_hash(ParsedPage((a,)))


def _two_versions(tmp_path: Path, pages: PageServer) -> Path:
    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    config = write_config(tmp_path, [(VENDOR, pages.url("/connect"))])
    assert cli(config, "run").returncode == 0
    pages.serve("/connect", zendesk_page("v2", recent()))
    assert cli(config, "run").returncode == 0
    return config


def test_show_at_date_history_export_and_who(tmp_path: Path, pages: PageServer) -> None:
    config = _two_versions(tmp_path, pages)
    hist = json.loads(cli(config, "history", VENDOR, "--json").stdout)
    assert len(hist) == 2 and hist[1]["changes"] == 4
    today = datetime.now(UTC).date().isoformat()
    now_entries = json.loads(cli(config, "show", VENDOR, "--at", today, "--json").stdout)["entries"]
    assert "Snowflake Inc." in {e["entity"] for e in now_entries}
    early = cli(config, "show", VENDOR, "--at", "2001-01-01")
    assert early.returncode == 1 and "no snapshot" in early.stderr
    bad = cli(config, "show", VENDOR, "--at", "yesterday")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    rows = list(csv.DictReader(io.StringIO(cli(config, "export").stdout)))
    assert len(rows) == 18 and {r["vendor"] for r in rows} == {VENDOR}
    changes = json.loads(cli(config, "export", "--format", "json", "--what", "changes").stdout)
    assert sorted(c["kind"] for c in changes) == ["added", "changed", "changed", "removed"]
    who = json.loads(cli(config, "who", "cloudflare", "--json").stdout)
    assert {(w["vendor"], w["section"]) for w in who} == {
        (VENDOR, "Service Subprocessors"),
        (VENDOR, "Content Delivery Networks"),
    }
    since = json.loads(cli(config, "changes", "--since", "2999-01-01", "--json").stdout)
    assert since == []
    missing = cli(config, "changes", "--vendor", "Nope")
    assert missing.returncode == 2 and "Nope" in missing.stderr


def test_views_answer_questions_without_our_code(tmp_path: Path, pages: PageServer) -> None:
    _two_versions(tmp_path, pages)
    with sqlite3.connect(tmp_path / "pw.db") as conn:
        current = conn.execute("select count(*) from current_entries").fetchone()[0]
        log = conn.execute("select kind, entity from change_log where kind = 'added'").fetchall()
        usage = conn.execute("select vendor from entity_usage where entity = 'Snowflake Inc.'").fetchall()
        windows = conn.execute("select count(*) from open_windows").fetchone()[0]
    assert current == 18
    assert log == [("added", "Snowflake Inc.")]
    assert usage == [(VENDOR,)]
    assert windows == 1


def test_reparse_adds_a_reading_and_keeps_the_recorded_ones(tmp_path: Path, pages: PageServer) -> None:
    config = _two_versions(tmp_path, pages)
    db = tmp_path / "pw.db"
    with sqlite3.connect(db) as conn:
        # what an older parser might have stored: a different row in first position
        conn.execute(
            "insert into rows (hash, section, entity, purpose, country, extra)"
            " values (randomblob(16), 'S', 'Garbled', '', '', '{}')"
        )
        conn.execute("update snapshot_rows set row_id = last_insert_rowid() where position = 0")
        before_outbox = conn.execute("select count(*) from outbox").fetchone()[0]
    out = cli(config, "reparse")
    assert out.returncode == 0, out.stderr
    assert f"{VENDOR}: page read again" in out.stdout, out.stdout
    with sqlite3.connect(db) as conn:
        assert (
            conn.execute("select count(*) from current_entries where entity = 'Garbled'").fetchone()[0] == 0
        )
        assert (
            conn.execute("select count(*) from entries where entity = 'Garbled'").fetchone()[0] == 2
        )  # as recorded
        assert conn.execute("select count(*) from outbox").fetchone()[0] == before_outbox
    changes = json.loads(cli(config, "changes", "--json").stdout)
    assert len(changes) == 4


def test_run_lock_refuses_a_second_check(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    with run_lock(db), pytest.raises(LockedError) as info, run_lock(db):
        pass
    assert "another policy-watch check is running" in str(info.value)
    with run_lock(db):  # released
        pass


def test_two_runs_at_once_do_not_alert_twice(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    config = write_config(
        tmp_path, [(VENDOR, pages.url("/connect"))], notify=[f"json://127.0.0.1:{pages.port}/hook"]
    )
    assert cli(config, "run").returncode == 0
    pages.serve("/connect", zendesk_page("v2", recent()))
    cmd = [sys.executable, "-m", "policy_watch", "--config", str(config), "run"]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes[0] == 0
    assert len(pages.posts) == 1, "the change is alerted once"
    if codes[1] != 0:
        assert any("another policy-watch check is running" in err for _, err in outs)
    with sqlite3.connect(tmp_path / "pw.db") as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert conn.execute("select count(*) from snapshots").fetchone()[0] == 2
    os.environ.pop("PW_UNUSED", None)


def test_datasette_canned_queries_run(tmp_path: Path, pages: PageServer) -> None:
    from pwtest import ROOT

    _two_versions(tmp_path, pages)
    meta = json.loads((ROOT / "datasette-metadata.json").read_text())
    params = {"since": "2000-01-01", "entity": "Snow", "vendor": VENDOR, "date": "2999-12-31"}
    with sqlite3.connect(tmp_path / "pw.db") as conn:
        results = {
            name: conn.execute(q["sql"], {k: v for k, v in params.items() if f":{k}" in q["sql"]}).fetchall()
            for name, q in meta["databases"]["policy_watch"]["queries"].items()
        }
    assert len(results["open_deadlines"]) == 1
    assert len(results["changes_since"]) == 4
    assert [r[0] for r in results["vendors_using_entity"]] == ["Snowflake Inc."]
    assert len(results["list_on_date"]) == 18
    assert results["failing_vendors"] == []


def test_savepoint_journals_stay_in_memory(tmp_path: Path) -> None:
    """Each vendor is recorded in a savepoint; its undo log must not go through a temporary file
    (it did: 80% of the pages written by a first run of 1,000 vendors)."""
    store = Store.open(tmp_path / "pw.db")
    try:
        pragmas = {
            p: store.db.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("journal_mode", "synchronous", "temp_store", "foreign_keys", "wal_autocheckpoint")
        }
        with store.batch():  # a run copies its log into the database less often, then as usual again
            during = store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        after = store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    finally:
        store.close()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "temp_store": 2,
        "foreign_keys": 1,
        "wal_autocheckpoint": 1000,
    }
    assert (during, after) == (10000, 1000)


def test_a_batch_copies_its_log_into_the_database_as_it_goes(tmp_path: Path) -> None:
    """While a batch writes on, its committed pages reach the database file in the background
    (in WAL mode only a checkpoint writes there), so little is left to copy when it ends; the
    thread doing it is gone afterwards, and nothing is lost."""
    import threading

    path = tmp_path / "pw.db"
    store = Store.open(path)
    try:
        store.db.execute("create table blobs (data blob)")
        before = path.stat().st_size
        with store.batch(size=1) as tick:
            for _ in range(40):
                store.db.conn.execute("insert into blobs values (?)", [os.urandom(50_000)])
                tick()
            assert wait_for(lambda: path.stat().st_size > before + 1_000_000), (
                "nothing was copied during the batch"
            )
            assert any(t.name == "pw-checkpoint" for t in threading.enumerate())
        assert not any(t.name == "pw-checkpoint" for t in threading.enumerate())
        count = store.db.execute("select count(*) from blobs").fetchone()[0]
    finally:
        store.close()
    assert count == 40
    with sqlite3.connect(path) as conn:
        assert conn.execute("select count(*) from blobs").fetchone()[0] == 40


def test_a_busy_database_does_not_stop_the_batch(tmp_path: Path) -> None:
    """A reader holding the log open: the background copy does what it can, the batch commits."""
    import threading

    path = tmp_path / "pw.db"
    store = Store.open(path)
    pinned, batch_done = threading.Event(), threading.Event()

    def read_until_the_batch_is_done() -> None:
        reader = sqlite3.connect(path, isolation_level=None)
        try:
            reader.execute("begin")
            reader.execute("select count(*) from vendors").fetchall()  # a read transaction pins the log
            pinned.set()
            batch_done.wait(90)  # a batch that waited for this reader would wait this long
            reader.execute("commit")
        finally:
            reader.close()

    reader = threading.Thread(target=read_until_the_batch_is_done)
    try:
        store.db.execute("create table blobs (data blob)")
        # Waiting for a lock would outlast the reader, not give up after the usual 30 s.
        store.db.execute("PRAGMA busy_timeout = 600000")
        reader.start()
        assert pinned.wait(60)
        start = time.monotonic()
        with store.batch(size=1) as tick:
            for _ in range(10):
                store.db.conn.execute("insert into blobs values (?)", [os.urandom(20_000)])
                tick()
        waited = time.monotonic() - start
        batch_done.set()
        reader.join()
        # It takes a fraction of a second; waiting for the reader would take its 90 s.
        assert waited < 60, f"the batch waited {waited:.0f} s for the reader"
        assert store.db.execute("select count(*) from blobs").fetchone()[0] == 10
    finally:
        batch_done.set()
        if reader.is_alive():
            reader.join()
        store.close()


def test_an_interrupted_vendor_is_undone_before_the_batch_commits(tmp_path: Path) -> None:
    """Ctrl-C while one vendor is being recorded: the vendors before it are committed, none of it is."""
    store = Store.open(tmp_path / "pw.db")
    insert = (
        "insert into vendors (name, url, created_at, consecutive_failures, failing)"
        " values (?, 'https://example.com', '2026-01-01', 0, 0)"
    )
    try:
        with pytest.raises(KeyboardInterrupt), store.batch():
            with store.transaction():
                store.db.conn.execute(insert, ["recorded"])
            with store.transaction():
                store.db.conn.execute(insert, ["half-recorded"])
                raise KeyboardInterrupt
        names = [r[0] for r in store.db.conn.execute("select name from vendors")]
    finally:
        store.close()
    assert names == ["recorded"]


@pytest.mark.parametrize("text", ["Acme\x00Corp", "Émoji 🚀 Ltd", 'Quote "and" back\\slash', "Line\u2028sep"])
def test_stored_rows_read_back_exactly(tmp_path: Path, text: str) -> None:
    page = ParsedPage(
        entries=(Entry("S", text, "p", "c"), Entry("S", "Other", text, "c"), Entry("S", text, "p", "c"))
    )
    store = Store.open(tmp_path / "pw.db")
    try:
        vid = store.vendors.state("V", "https://example.com", datetime.now(UTC)).id
        with store.transaction():
            sid = store.snapshots.insert(
                vid, page, status="good", now=datetime.now(UTC), body_hash=None, parser_version="1"
            )
        back = store.snapshots.get(sid).page()
    finally:
        store.close()
    assert back.entries == page.entries
    assert content_hash(back) == content_hash(page)


def test_sql_is_written_only_in_the_store() -> None:
    """No module outside ``policy_watch.store`` runs a statement or imports a database library."""
    src = Path(__file__).resolve().parents[1] / "src" / "policy_watch"
    found = []
    for path in sorted(src.rglob("*.py")):
        if path.is_relative_to(src / "store"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.execute(many)?\(|\bimport sqlite3\b|\bsqlite_utils\b|\.db\.conn\b", line):
                found.append(f"{path.relative_to(src)}:{n}: {line.strip()}")
    assert found == []


def test_entity_names_read_each_stored_row_once(tmp_path: Path) -> None:
    """Spellings are read from the rows stored since entity_names was last brought up to date,
    whatever snapshot lists them (a held page too, which a person may accept later); a database that
    never noted how far it got is checked against every spelling on record once."""
    store = Store.open(tmp_path / "pw.db")

    def snapshot(vendor: str, *names: str, status: str = "good") -> None:
        vid = store.vendors.state(vendor, f"https://{vendor}.example", datetime.now(UTC)).id
        page = ParsedPage(entries=tuple(Entry("S", n, "p", "c") for n in names))
        store.snapshots.insert(
            vid, page, status=status, now=datetime.now(UTC), body_hash=None, parser_version="1"
        )

    def bring_up_to_date(rules: str = "rules-1") -> list[str]:
        todo = store.entries.names_todo(rules)
        store.entries.add_names([(n, n.upper(), n.lower()) for n in todo.spellings], rules, todo)
        return sorted(todo.spellings)

    try:
        with store.transaction():
            snapshot("a", "Acme", "Beta")
            assert bring_up_to_date() == ["Acme", "Beta"]
            assert store.entries.names_todo("rules-1").nothing
            snapshot("b", "Beta", "Gamma")
            assert bring_up_to_date() == ["Gamma"]  # Beta is known; a's rows are not read again
            snapshot("c", "Delta", status="suspect")
            assert bring_up_to_date() == ["Delta"]  # a held page's names are there when it is accepted
            # A spelling missing from the table but in an older row is not looked for...
            store.db.conn.execute("delete from entity_names where entity = 'Acme'")
            assert store.entries.names_todo("rules-1").nothing
            # ...unless the database never noted how far it read (one written before the note existed).
            store.db.conn.execute("delete from schema_info where key = 'entity_names_rows_upto'")
            assert bring_up_to_date() == ["Acme"]
            # Other rules: everything again, the held page's names included.
            assert bring_up_to_date("rules-2") == ["Acme", "Beta", "Delta", "Gamma"]
            assert store.entries.names_todo("rules-2").nothing
            # A database that never noted its rules: the rows say which rules read them.
            store.db.conn.execute("delete from schema_info where key like 'entity_names%'")
            assert not store.entries.names_todo("rules-2").rebuild
            assert store.entries.names_todo("rules-1").rebuild
    finally:
        store.close()


def test_a_held_vendor_stays_held_on_the_review_page_after_its_baseline_is_read_again(tmp_path: Path) -> None:
    """A later reading of the baseline (new parse rules) is not the vendor's latest page: a page
    held as suspect is still the latest, and the review page still lists the vendor as held."""
    from datetime import date

    from policy_watch.store import reading

    store = Store.open(tmp_path / "pw.db")
    now = datetime.now(UTC)
    page = ParsedPage(entries=(Entry("S", "Acme", "p", "c"),))
    try:
        vid = store.vendors.state("V", "https://v.example", now).id
        with store.transaction():
            good = store.snapshots.insert(
                vid, page, status="good", now=now, body_hash=None, parser_version="1"
            )
            store.snapshots.insert(
                vid, ParsedPage(entries=()), status="suspect", now=now, body_hash=None, parser_version="1"
            )
            store.snapshots.insert(
                vid, page, status="good", now=now, body_hash=None, parser_version="2", reading_of=good
            )
        (summary,) = reading.vendor_summaries(store, date.today())
        assert summary.suspect
        assert [s.name for s in reading.vendor_summaries(store, date.today(), troubled=True)] == ["V"]
    finally:
        store.close()
