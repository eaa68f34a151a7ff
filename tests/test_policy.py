"""The rule that decides whether a new reading of a page is believed (policy.judge, policy.hold)."""

from __future__ import annotations

import pytest

from policy_watch.models import Entry, SnapshotStatus
from policy_watch.policy import Hold, Reading, Suspicion, Verdict, hold, judge, lost_entities

NAMES = ["Amazon Web Services", "Google Cloud", "Stripe", "Twilio", "Zendesk", "Datadog", "Okta", "Snowflake"]
LIST = tuple(Entry("Infrastructure", n, "hosting", "United States") for n in NAMES)
BASE = Reading(LIST, "hash-base")
RATIO = 0.5


def reading(entries: tuple[Entry, ...], chash: str = "hash-new") -> Reading:
    return Reading(entries, chash)


def test_first_reading_becomes_the_baseline() -> None:
    assert judge(None, reading(LIST), RATIO).verdict is Verdict.FIRST


def test_unreadable_first_page_is_an_error_not_a_baseline() -> None:
    j = judge(None, Reading(unreadable="no subprocessor list found"), RATIO)
    assert j.verdict is Verdict.UNREADABLE
    assert j.suspicion is None


def test_unreadable_page_with_a_baseline_is_held_never_every_entity_removed() -> None:
    j = judge(BASE, Reading(unreadable="no subprocessor list found"), RATIO)
    assert j.verdict is Verdict.HOLD
    assert j.suspicion == Suspicion(unreadable="no subprocessor list found")


def test_same_content_hash_is_the_same_reading() -> None:
    assert judge(BASE, reading(LIST, "hash-base"), RATIO).verdict is Verdict.SAME


def test_a_page_that_lost_every_entity_is_held() -> None:
    j = judge(BASE, reading(()), RATIO)
    assert j.verdict is Verdict.HOLD
    assert j.suspicion == Suspicion(lost=len(NAMES), of=len(NAMES))


def test_a_page_cut_short_is_held_with_how_much_it_lost() -> None:
    j = judge(BASE, reading(LIST[:3]), RATIO)
    assert j.verdict is Verdict.HOLD
    assert j.suspicion == Suspicion(lost=5, of=8)


def test_losing_up_to_the_ratio_is_a_real_change() -> None:
    j = judge(BASE, reading(LIST[:4]), RATIO)  # 4 of 8 gone: exactly half
    assert j.verdict is Verdict.NEW
    assert j.suspicion is None


def test_the_ratio_is_the_callers() -> None:
    assert judge(BASE, reading(LIST[:4]), 0.25).verdict is Verdict.HOLD
    assert judge(BASE, reading(LIST[:3]), 0.75).verdict is Verdict.NEW


def test_an_added_entity_is_a_new_reading() -> None:
    more = (*LIST, Entry("Infrastructure", "Cloudflare", "CDN", "United States"))
    assert judge(BASE, reading(more), RATIO).verdict is Verdict.NEW


def test_an_empty_baseline_holds_nothing_back() -> None:
    assert judge(Reading((), "hash-empty"), reading(LIST), RATIO).verdict is Verdict.NEW


def test_lost_entities_counts_names_not_rows() -> None:
    twice = (*LIST, Entry("Support", "Zendesk", "tickets", "Ireland"))
    assert lost_entities(twice, LIST[:4]) == Suspicion(lost=4, of=8)


@pytest.mark.parametrize(
    ("latest_status", "latest_hash", "step"),
    [
        (None, None, Hold.ALARM),  # no snapshot at all
        (SnapshotStatus.GOOD, "hash-new", Hold.ALARM),  # the first held reading of an episode
        (SnapshotStatus.ACCEPTED, "hash-other", Hold.ALARM),
        (SnapshotStatus.SUPERSEDED, "hash-new", Hold.ALARM),  # the last episode ended
        (SnapshotStatus.SUSPECT, "hash-other", Hold.REPLACE),  # held already, other content: no new alarm
        (SnapshotStatus.SUSPECT, "hash-new", Hold.CONFIRM),  # held already, same content
        ("suspect", "hash-new", Hold.CONFIRM),  # as the store returns it
    ],
)
def test_a_held_reading_alarms_once_per_episode(
    latest_status: str | None, latest_hash: str | None, step: Hold
) -> None:
    assert hold(latest_status, latest_hash, "hash-new") is step
