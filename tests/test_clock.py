"""The objection clock: opening-date rules, reminders, expiry, late detection, and the decision commands."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner
from pwtest import PageServer, cli, write_config
from test_outbox import V1, V2, V3, V4, Receiver, check, opened, rows

from policy_watch import clock, pipeline, queries
from policy_watch.cli import cli as cli_group
from policy_watch.config import DEFAULT_WINDOW_KINDS, Config, load_config
from policy_watch.fetch import Fetcher
from policy_watch.models import Change, ChangeKind, WindowRule


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


D = date
DEFAULT_KINDS = DEFAULT_WINDOW_KINDS


def at(day: str, hour: int = 8) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


# --- pure rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("detected", "declared", "previous", "opens", "rule"),
    [
        (
            D(2026, 11, 5),
            D(2026, 11, 2),
            D(2018, 5, 17),
            D(2026, 11, 2),
            WindowRule.DECLARED,
        ),  # moved, in the past
        (
            D(2026, 11, 2),
            D(2026, 11, 2),
            D(2018, 5, 17),
            D(2026, 11, 2),
            WindowRule.DECLARED,
        ),  # moved, same day
        (
            D(2026, 10, 30),
            D(2026, 11, 2),
            D(2018, 5, 17),
            D(2026, 10, 30),
            WindowRule.DETECTED,
        ),  # in the future
        (
            D(2026, 11, 20),
            D(2026, 11, 2),
            D(2026, 11, 2),
            D(2026, 11, 20),
            WindowRule.DETECTED,
        ),  # did not move
        (D(2026, 11, 20), D(2026, 10, 1), D(2026, 11, 2), D(2026, 11, 20), WindowRule.DETECTED),  # moved back
        (D(2026, 11, 20), None, D(2026, 11, 2), D(2026, 11, 20), WindowRule.DETECTED),  # date gone
        (D(2026, 11, 20), D(2026, 11, 18), None, D(2026, 11, 18), WindowRule.DECLARED),  # date appeared
    ],
)
def test_window_opening_rule(
    detected: date, declared: date | None, previous: date | None, opens: date, rule: WindowRule
) -> None:
    w = clock.open_window(detected, 30, declared, previous)
    assert (w.opens, w.rule, w.deadline) == (opens, rule, opens + timedelta(days=30))


@pytest.mark.parametrize(
    ("change", "kinds", "opens"),
    [
        (Change(ChangeKind.ADDED, "S", "X"), DEFAULT_KINDS, True),
        (Change(ChangeKind.REMOVED, "S", "X"), DEFAULT_KINDS, False),
        (Change(ChangeKind.CHANGED, "S", "X", "country", "US", "DE"), DEFAULT_KINDS, True),
        (Change(ChangeKind.CHANGED, "S", "X", "Entity Type", "a", "b"), DEFAULT_KINDS, False),
        (Change(ChangeKind.CHANGED, "S", "X", "Entity Type", "a", "b"), ("changed",), True),
        (Change(ChangeKind.REMOVED, "S", "X"), ("removed",), True),
        (Change(ChangeKind.COLUMN_ADDED, "S", "", "Data Access"), DEFAULT_KINDS, False),
    ],
)
def test_which_changes_open_a_window(change: Change, kinds: tuple[str, ...], opens: bool) -> None:
    assert clock.opens_window(change, kinds) is opens


@pytest.mark.parametrize(
    ("today", "sent", "due"),
    [
        (D(2026, 11, 24), [], []),
        (D(2026, 11, 25), [], [7]),
        (D(2026, 11, 26), [7], []),
        (D(2026, 12, 1), [7], [1]),
        (D(2026, 12, 1), [], [1, 7]),  # missed days: both are due, one reminder covers them
        (D(2026, 12, 2), [1, 7], []),
        (D(2026, 12, 3), [], []),  # past the deadline: nothing
    ],
)
def test_reminders_due(today: date, sent: list[int], due: list[int]) -> None:
    assert clock.reminders_due(D(2026, 12, 2), today, (7, 1), sent) == due


# --- the clock in the pipeline, travelling in time ---------------------------------------------------


def _zendesk_changes(
    pages: PageServer,
    hooks: Receiver,
    tmp_path: Path,
    first: bytes,
    first_day: str,
    second: bytes,
    second_day: str,
    settings: str = "",
) -> tuple[Config, pipeline.RunReport]:
    """Zendesk Connect checked on ``first_day`` serving ``first``, then on ``second_day`` serving ``second``."""
    pages.serve("/z", first)
    cfg = load_config(
        write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))], [hooks.url()], settings=settings)
    )
    check(cfg, at(first_day))
    pages.serve("/z", second)
    return cfg, check(cfg, at(second_day))


def _windows(cfg_path: Path) -> list[dict[str, object]]:
    return rows(load_config(cfg_path), "select * from windows order by id")


def test_declared_date_that_moved_forward_opens_the_window(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    cfg, report = _zendesk_changes(pages, hooks, tmp_path, V1, "2026-11-01", V2, "2026-11-05")
    [w] = _windows(cfg.path)
    assert (w["opens"], w["deadline"], w["rule"], w["late"], w["status"]) == (
        "2026-11-02",
        "2026-12-02",
        "declared_date",
        0,
        "open",
    )
    assert str(w["detected_at"]).startswith("2026-11-05")
    assert report.changed[0].window is not None and report.changed[0].window.deadline == D(2026, 12, 2)
    [post] = hooks.posts
    assert post["title"] == "Zendesk Connect: 1 added, 1 removed, 2 changed — object by 2026-12-02"
    assert (
        "The window opened 2026-11-02, the update date the page declares; detected 2026-11-05"
        in post["message"]
    )
    with opened(cfg) as store:
        [listed] = queries.windows(store, D(2026, 11, 5))
    assert (listed["days_left"], listed["rule"], listed["changes"]) == (27, "declared_date", 3)


def test_unmoved_declared_date_opens_the_window_on_detection(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    cfg, _ = _zendesk_changes(pages, hooks, tmp_path, V3, "2026-11-10", V4, "2026-11-20")
    [w] = _windows(cfg.path)
    assert (w["opens"], w["deadline"], w["rule"]) == ("2026-11-20", "2026-12-20", "detection_date")
    assert hooks.posts[0]["title"].endswith("— object by 2026-12-20")


def test_declared_date_in_the_future_is_not_used(pages: PageServer, hooks: Receiver, tmp_path: Path) -> None:
    cfg, _ = _zendesk_changes(pages, hooks, tmp_path, V1, "2026-10-01", V2, "2026-10-30")
    [w] = _windows(cfg.path)
    assert (w["opens"], w["deadline"], w["rule"]) == ("2026-10-30", "2026-11-29", "detection_date")


def test_late_detection_is_flagged_and_the_window_expires(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    cfg, _ = _zendesk_changes(pages, hooks, tmp_path, V1, "2026-10-01", V2, "2026-12-10")
    [w] = _windows(cfg.path)
    assert (w["opens"], w["deadline"], w["late"], w["status"]) == ("2026-11-02", "2026-12-02", 1, "expired")
    [post] = hooks.posts
    assert post["title"] == "Zendesk Connect: 1 added, 1 removed, 2 changed — DEADLINE PASSED 2026-12-02"
    assert post["message"].startswith("!!! DEADLINE ALREADY PASSED !!!")
    check(cfg, at("2026-12-11"))
    assert len(hooks.posts) == 1, "no reminders for a window that was closed when found"


def test_reminders_seven_and_one_day_before_each_once_then_expiry(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    cfg, _ = _zendesk_changes(pages, hooks, tmp_path, V1, "2026-11-01", V2, "2026-11-05")
    titles: dict[str, list[str]] = {}
    for day in [
        "2026-11-24",
        "2026-11-25",
        "2026-11-25",
        "2026-11-26",
        "2026-12-01",
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
        "2026-12-04",
    ]:
        before = len(hooks.posts)
        check(cfg, at(day, hour=9 + len(titles.get(day, []))))
        titles.setdefault(day, []).extend(p["title"] for p in hooks.posts[before:])
    sent = {day: t for day, t in titles.items() if t}
    assert sent == {
        "2026-11-25": ["Zendesk Connect: 7 days left to object (deadline 2026-12-02)"],
        "2026-12-01": ["Zendesk Connect: 1 day left to object (deadline 2026-12-02)"],
    }
    [w] = _windows(cfg.path)
    assert w["status"] == "expired" and json.loads(str(w["reminders_sent"])) == [1, 7]
    with opened(cfg) as store:
        assert queries.windows(store, D(2026, 12, 4)) == []
        [closed] = queries.windows(store, D(2026, 12, 4), all_=True)
    assert closed["status"] == "expired" and closed["days_left"] == -2


def test_missed_days_send_one_reminder_and_decided_windows_get_none(
    pages: PageServer, hooks: Receiver, tmp_path: Path
) -> None:
    pages.serve("/a", V1)
    pages.serve("/b", V1)
    cfg = load_config(write_config(tmp_path, [("A", pages.url("/a")), ("B", pages.url("/b"))], [hooks.url()]))
    check(cfg, at("2026-11-01"))
    pages.serve("/a", V2)
    pages.serve("/b", V2)
    check(cfg, at("2026-11-05"))
    with opened(cfg) as store:
        b = next(w for w in queries.windows(store, D(2026, 11, 5)) if w["vendor"] == "B")
        queries.set_window(
            store, int(b["id"]), "object", "alice", "sent the objection letter", at("2026-11-06")
        )
    before = len(hooks.posts)
    check(cfg, at("2026-12-01"))
    assert [p["title"] for p in hooks.posts[before:]] == ["A: 1 day left to object (deadline 2026-12-02)"]


def test_configured_window_kinds(pages: PageServer, hooks: Receiver, tmp_path: Path) -> None:
    cfg, _ = _zendesk_changes(
        pages, hooks, tmp_path, V1, "2026-11-01", V2, "2026-11-05", settings='window_kinds = ["renamed"]'
    )
    assert _windows(cfg.path) == []
    assert hooks.posts[0]["title"] == "Zendesk Connect: 1 added, 1 removed, 2 changed"
    assert "These changes open no objection window." in hooks.posts[0]["message"]


def test_deadlines_command_counts_days_left_from_the_real_clock(pages: PageServer, tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))]))
    for version, day in [(V1, 1), (V2, 5)]:
        pages.serve("/z", version)
        with (
            time_machine.travel(datetime(2026, 11, day, 8, tzinfo=UTC), tick=False),
            opened(cfg) as store,
            Fetcher(pipeline.fetch_options(cfg)) as f,
        ):
            pipeline.run_check(cfg, store, f)  # no now=: the run reads the travelled clock
    runner = CliRunner()
    for now, left in [(datetime(2026, 11, 5, 9, tzinfo=UTC), 27), (datetime(2026, 12, 1, 9, tzinfo=UTC), 1)]:
        with time_machine.travel(now, tick=False):
            out = runner.invoke(cli_group, ["--config", str(cfg.path), "deadlines", "--json"])
        assert out.exit_code == 0, out.output
        [w] = json.loads(out.output)
        assert (w["days_left"], w["opens"], w["deadline"], w["rule"]) == (
            left,
            "2026-11-02",
            "2026-12-02",
            "declared_date",
        )


# --- decisions through the command line -------------------------------------------------------------


def test_ack_object_accept_through_the_cli(pages: PageServer, tmp_path: Path) -> None:
    pages.serve("/a", V3)
    pages.serve("/b", V3)
    pages.serve("/c", V3)
    cfg = write_config(tmp_path, [("A", pages.url("/a")), ("B", pages.url("/b")), ("C", pages.url("/c"))])
    assert cli(cfg, "run").returncode == 0
    for p in ("/a", "/b", "/c"):
        pages.serve(p, V4)  # the page's date does not move: windows open today, whatever today is
    assert cli(cfg, "run").returncode == 0
    listed = json.loads(cli(cfg, "deadlines", "--json").stdout)
    ids = {w["vendor"]: w["id"] for w in listed}
    assert sorted(ids) == ["A", "B", "C"] and {w["days_left"] for w in listed} == {30}
    assert {w["rule"] for w in listed} == {"detection_date"} and {w["status"] for w in listed} == {"open"}

    ack = cli(cfg, "ack", str(ids["A"]), "--note", "reviewing with legal", "--by", "alice")
    assert ack.returncode == 0, ack.stderr
    assert f"window {ids['A']} (A, deadline" in ack.stdout and "acknowledged by alice" in ack.stdout
    obj = cli(cfg, "object", str(ids["B"]), "--note", "letter sent")
    assert obj.returncode == 0 and f"objected by {getpass.getuser()}" in obj.stdout
    acc = cli(cfg, "accept", str(ids["C"]), "--by", "carol")
    assert acc.returncode == 0 and "accepted by carol" in acc.stdout

    still_open = json.loads(cli(cfg, "deadlines", "--json").stdout)
    assert [(w["vendor"], w["status"]) for w in still_open] == [("A", "acknowledged")]
    every = {w["vendor"]: w["status"] for w in json.loads(cli(cfg, "deadlines", "--all", "--json").stdout)}
    assert every == {"A": "acknowledged", "B": "objected", "C": "accepted"}
    stored = {r["id"]: r for r in rows(load_config(cfg), "select id, status_by, note from windows")}
    assert (stored[ids["A"]]["status_by"], stored[ids["A"]]["note"]) == ("alice", "reviewing with legal")
    assert stored[ids["B"]]["note"] == "letter sent"

    missing = cli(cfg, "ack", "999")
    assert missing.returncode == 2 and "no objection window with id 999" in missing.stderr
