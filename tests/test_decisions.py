"""Decisions on objection windows: an append-only history, through the store and the real CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pwtest import ZENDESK, PageServer, cli, recent, write_config, zendesk_page
from sqlite_utils import Database

from policy_watch.errors import NotFoundError
from policy_watch.models import Decision
from policy_watch.store import Store, WindowStatus, migrations

VENDOR = "Zendesk Connect"
ADDED = "Snowflake Inc."  # the entity zendesk v2 adds


def _window(tmp_path: Path, pages: PageServer) -> tuple[Path, int]:
    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    config = write_config(tmp_path, [(VENDOR, pages.url("/connect"))])
    assert cli(config, "run").returncode == 0
    pages.serve("/connect", zendesk_page("v2", recent()))
    assert cli(config, "run").returncode == 0
    [w] = json.loads(cli(config, "deadlines", "--json").stdout)
    return config, int(w["id"])


def test_every_decision_is_kept_oldest_first(tmp_path: Path, pages: PageServer) -> None:
    config, wid = _window(tmp_path, pages)
    first = cli(config, "object", str(wid), "--note", "letter sent to the vendor", "--by", "alice")
    assert first.returncode == 0, first.stderr
    second = cli(config, "accept", str(wid), "--by", "bob")
    assert second.returncode == 0 and "accepted by bob" in second.stdout, second.stderr

    [w] = json.loads(cli(config, "deadlines", "--all", "--json").stdout)
    assert w["status"] == "accepted"
    assert [(d["action"], d["by"], d["note"]) for d in w["decisions"]] == [
        ("objected", "alice", "letter sent to the vendor"),
        ("accepted", "bob", None),
    ]
    at = [datetime.fromisoformat(d["at"]) for d in w["decisions"]]
    assert at[0] <= at[1] and all(a.tzinfo is not None for a in at)


def test_deadlines_and_show_name_the_entities_of_a_window(tmp_path: Path, pages: PageServer) -> None:
    config, wid = _window(tmp_path, pages)
    [w] = json.loads(cli(config, "deadlines", "--json").stdout)
    assert ADDED in w["entities"] and w["decisions"] == []
    table = cli(config, "deadlines")
    assert table.returncode == 0 and ADDED in table.stdout, table.stdout
    shown = json.loads(cli(config, "show", VENDOR, "--json").stdout)
    assert [x["id"] for x in shown["windows"]] == [wid] and ADDED in shown["windows"][0]["entities"]
    text = cli(config, "show", VENDOR)
    assert (
        f"objection window {wid}" in text.stdout and ADDED in text.stdout.split(f"objection window {wid}")[1]
    )


@pytest.mark.parametrize("command", ["accept", "object", "ack"])
def test_a_decision_on_a_window_that_does_not_exist_is_refused(
    tmp_path: Path, pages: PageServer, command: str
) -> None:
    config, _ = _window(tmp_path, pages)
    r = cli(config, command, "999")
    assert r.returncode != 0 and "no objection window with id 999" in r.stderr, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    with sqlite3.connect(tmp_path / "pw.db") as conn:
        assert conn.execute("select count(*) from decisions").fetchone()[0] == 0


def test_store_decisions_api(tmp_path: Path, pages: PageServer) -> None:
    _, wid = _window(tmp_path, pages)
    store = Store.open(tmp_path / "pw.db")
    try:
        t1, t2 = datetime(2026, 11, 6, 9, tzinfo=UTC), datetime(2026, 11, 7, 9, tzinfo=UTC)
        d1 = store.windows.add_decision(wid, "acknowledged", "alice", "reviewing", t1)
        d2 = store.windows.add_decision(wid, "objected", "bob", None, t2)
        assert isinstance(d1, Decision) and d1.id < d2.id
        assert store.windows.decisions(wid) == [d1, d2]
        assert store.windows.decisions(wid)[0] == Decision(
            d1.id, wid, "acknowledged", "alice", "reviewing", t1
        )
        window = store.windows.get(wid)
        assert window is not None and window.status == WindowStatus.OBJECTED
        with pytest.raises(NotFoundError, match="no objection window with id 999"):
            store.windows.add_decision(999, "accepted", "carol", None, t2)
        with pytest.raises(NotFoundError, match="999"):
            store.windows.decisions(999)
        assert len(store.windows.decisions(wid)) == 2
    finally:
        store.close()


def test_a_decision_recorded_before_the_history_existed_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(path)
    migrations.apply(db, stop_before="m004_decisions")
    db.table("vendors").insert(
        {"id": 1, "name": "Old", "url": "https://old.example/", "created_at": "2025-01-01"}
    )
    db.table("snapshots").insert(
        {
            "id": 1,
            "vendor_id": 1,
            "content_hash": "c",
            "status": "good",
            "first_seen": "2025-01-01",
            "last_seen": "2025-01-02",
            "entry_count": 0,
        }
    )
    for wid, status, by, at, note in [
        (1, "objected", "alice", "2025-01-03T10:00:00+00:00", "sent the letter"),
        (2, "open", None, None, None),
        (3, "expired", None, None, None),
    ]:
        db.table("windows").insert(
            {
                "id": wid,
                "vendor_id": 1,
                "snapshot_id": 1,
                "detected_at": "2025-01-02T07:00:00+00:00",
                "opens": "2025-01-02",
                "deadline": "2025-02-01",
                "rule": "detection_date",
                "late": 0,
                "status": status,
                "status_by": by,
                "status_at": at,
                "note": note,
            }
        )
    db.conn.close()
    store = Store.open(path)
    try:
        assert store.windows.decisions(1) == [
            Decision(1, 1, "objected", "alice", "sent the letter", datetime(2025, 1, 3, 10, tzinfo=UTC))
        ]
        assert store.windows.decisions(2) == store.windows.decisions(3) == []
    finally:
        store.close()
