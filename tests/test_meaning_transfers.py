"""Adequacy rules (full, partial, none, regions, overrides) and the words an alert uses for them."""

from __future__ import annotations

from datetime import date

import pytest

from policy_watch import render
from policy_watch.meaning.countries import read_location
from policy_watch.meaning.transfers import (
    Adequacy,
    TransferOverrides,
    for_changes,
    meaning_of,
    rules,
    sentence,
)
from policy_watch.models import Change, ChangeKind, Entry, ObjectionWindow, WindowRule

SHIPPED = rules()
EEA = [
    "AT",
    "BE",
    "BG",
    "HR",
    "CY",
    "CZ",
    "DK",
    "EE",
    "FI",
    "FR",
    "DE",
    "GR",
    "HU",
    "IE",
    "IT",
    "LV",
    "LT",
    "LU",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SK",
    "SI",
    "ES",
    "SE",
    "IS",
    "LI",
    "NO",
]
ADEQUATE = ["AD", "AR", "FO", "GG", "IL", "IM", "JP", "JE", "NZ", "KR", "CH", "GB", "UY"]


def test_eea_members_are_inside() -> None:
    assert sorted(SHIPPED.eea) == sorted(EEA)
    assert all(SHIPPED.status(c) == (Adequacy.EEA, "") for c in EEA)


@pytest.mark.parametrize("code", ADEQUATE)
def test_full_adequacy(code: str) -> None:
    assert SHIPPED.status(code) == (Adequacy.FULL, "")
    assert SHIPPED.risks(read_location(code)) == ()


@pytest.mark.parametrize(
    ("code", "words"), [("US", "DPF-certified organisations"), ("CA", "commercial organisations")]
)
def test_partial_adequacy_is_listed_with_its_condition(code: str, words: str) -> None:
    adequacy, condition = SHIPPED.status(code)
    assert adequacy is Adequacy.PARTIAL and words in condition
    [risk] = SHIPPED.risks(read_location(code))
    assert (risk.place, risk.adequacy) == (code, Adequacy.PARTIAL) and words in risk.text()


@pytest.mark.parametrize("code", ["IN", "CN", "RU", "BR", "SG", "AU", "PH"])
def test_no_adequacy(code: str) -> None:
    assert SHIPPED.status(code) == (Adequacy.NONE, "")
    [risk] = SHIPPED.risks(read_location(code))
    assert risk.to_json() == {"place": code, "adequacy": "none", "condition": ""}


def test_regions_wider_than_the_eea_are_a_risk_and_eu_eea_are_not() -> None:
    assert SHIPPED.risks(read_location("EU, EEA, European Union")) == ()
    places = [
        (r.place, r.adequacy)
        for r in SHIPPED.risks(read_location("European Economic Area, Africa, and Middle East"))
    ]
    assert places == [("Africa", Adequacy.UNKNOWN), ("Middle East", Adequacy.UNKNOWN)]


def test_unread_text_is_not_a_risk_but_is_reported() -> None:
    m = meaning_of("added", None, None, None, "Varies", SHIPPED)
    assert m is not None and m.risks == () and m.location.unread == ("Varies",)
    assert m.to_json()["location_unrecognised"] == ["Varies"]


def test_overrides_extend_and_replace_the_shipped_lists() -> None:
    own = rules(
        TransferOverrides(
            adequate=("BR",),
            none=("US",),
            partial=(("IN", "only under our BCRs"),),
            places=(("Ashburn DC-3", "US"),),
        )
    )
    assert own.status("BR") == (Adequacy.FULL, "")
    assert own.status("US") == (Adequacy.NONE, "")
    assert own.status("IN") == (Adequacy.PARTIAL, "only under our BCRs")
    assert own.gazetteer.read("Ashburn DC-3").codes == ("US",)
    assert rules().status("US")[0] is Adequacy.PARTIAL  # the shipped rules are untouched


def test_meaning_of_added_entry_and_of_a_changed_location() -> None:
    added = meaning_of("added", None, None, None, "United States, Ireland, India", SHIPPED)
    assert added is not None
    assert added.countries == ("US", "IE", "IN")
    assert [r.place for r in added.risks] == ["US", "IN"] and added.carries_risk
    moved = meaning_of("changed", "country", "Ireland", "United States", None, SHIPPED)
    assert moved is not None and [r.place for r in moved.new] == ["US"] and moved.carries_risk
    us = meaning_of("added", None, None, None, "USA", SHIPPED)
    assert us is not None and sentence("Snowflake Inc.", us, SHIPPED) == (
        "Snowflake Inc. (added) — United States: outside the EEA, adequacy only for DPF-certified organisations"
    )
    back = meaning_of("changed", "country", "United States", "Ireland", None, SHIPPED)
    assert back is not None and back.risks == () and not back.carries_risk
    # the US was there before: only India is new, but both stay listed as risks
    more = meaning_of("changed", "country", "USA", "United States, India", None, SHIPPED)
    assert (
        more is not None
        and [r.place for r in more.risks] == ["US", "IN"]
        and [r.place for r in more.new] == ["IN"]
    )
    assert meaning_of("changed", "purpose", "Hosting", "Email", None, SHIPPED) is None
    assert meaning_of("removed", None, None, None, "India", SHIPPED) is None


def test_alert_wording() -> None:
    india = meaning_of("added", None, None, None, "India", SHIPPED)
    assert india is not None
    assert sentence("Infosys Limited", india, SHIPPED) == (
        "Infosys Limited (added) — India: outside the EEA, no adequacy decision; safeguards needed"
    )
    moved = meaning_of("changed", "country", "Ireland", "United States", None, SHIPPED)
    assert moved is not None
    assert sentence("Acme", moved, SHIPPED) == (
        "Acme (location changed) — new transfer to US: adequacy only for DPF-certified organisations"
    )
    mixed = meaning_of("added", None, None, None, "Japan, Germany, Varies", SHIPPED)
    assert mixed is not None
    assert sentence("Beta", mixed, SHIPPED) == (
        "Beta (added) — Japan: outside the EEA, adequacy decision; "
        "Germany: inside the EEA; location not recognised: 'Varies'"
    )
    us = meaning_of("added", None, None, None, "USA", SHIPPED)
    assert us is not None and sentence("Snowflake Inc.", us, SHIPPED) == (
        "Snowflake Inc. (added) — United States: outside the EEA, adequacy only for DPF-certified organisations"
    )
    back = meaning_of("changed", "country", "United States", "Ireland", None, SHIPPED)
    assert back is not None and "no new transfer outside the EEA" in sentence("Acme", back, SHIPPED)
    none = meaning_of("added", None, None, None, "", SHIPPED)
    assert none is not None and sentence("Gamma", none, SHIPPED) == "Gamma (added) — no location given"


def test_for_changes_takes_an_added_entrys_location_from_the_new_page() -> None:
    entries = [
        Entry("Infra", "Infosys Limited", "Support", "India"),
        Entry("Infra", "Infosys Limited", "Ops", "USA"),
        Entry("Other", "Infosys Limited", "x", "Japan"),
    ]
    changes = [
        Change(ChangeKind.ADDED, "Infra", "Infosys Limited"),
        Change(ChangeKind.CHANGED, "Infra", "Acme", "purpose", "a", "b"),
    ]
    added, other = for_changes(changes, entries, SHIPPED)
    assert other is None and added is not None and added.countries == ("IN", "US")


def test_the_alert_says_the_transfer_first_escaped() -> None:
    changes = [
        Change(ChangeKind.ADDED, "Infra", "<!channel> Infosys *Limited*"),
        Change(ChangeKind.ADDED, "Infra", "Hetzner"),
        Change(ChangeKind.CHANGED, "Infra", "Acme", "country", "Ireland", "United States"),
    ]
    entries = [
        Entry("Infra", "<!channel> Infosys *Limited*", "", "India"),
        Entry("Infra", "Hetzner", "", "Germany"),
    ]
    meanings = for_changes(changes, entries, SHIPPED)
    window = ObjectionWindow(date(2026, 11, 2), date(2026, 12, 2), WindowRule.DETECTED)
    msg = render.change_message(
        "V",
        "https://v.example/sub",
        changes,
        window,
        date(2026, 11, 2),
        window_kinds=("transfer",),
        meanings=meanings,
        transfer_rules=SHIPPED,
    )
    lines = msg.text.splitlines()
    assert lines[0] == "Transfers:"
    assert (
        lines[1]
        == "- ‹!channel› Infosys *Limited* (added) — India: outside the EEA, no adequacy decision; safeguards needed"
    )
    assert (
        lines[2]
        == "- Acme (location changed) — new transfer to US: adequacy only for DPF-certified organisations"
    )
    assert lines[3] == "- Hetzner (added) — Germany: inside the EEA"
    assert "<!channel>" not in msg.markdown and "\\*Limited\\*" in msg.markdown
    assert "&lt;!channel&gt;" in msg.html and "<!channel>" not in msg.html
    # under window_kinds = ["transfer"], only the changes carrying a new risk open the window
    opening, other = msg.text.split("Changes that open the objection window")[1].split("Other changes")
    assert "Infosys" in opening and "Acme" in opening and "Hetzner" not in opening
    assert "Hetzner" in other and "Infosys" not in other


def test_an_alert_without_meanings_is_unchanged() -> None:
    changes = [Change(ChangeKind.ADDED, "Infra", "Hetzner")]
    window = ObjectionWindow(date(2026, 11, 2), date(2026, 12, 2), WindowRule.DETECTED)
    msg = render.change_message("V", "https://v.example/sub", changes, window, date(2026, 11, 2))
    assert "Transfers" not in msg.text and "countries" not in msg.text


def test_window_kind_transfer_opens_a_window_only_for_a_new_risk() -> None:
    from policy_watch import clock

    purpose = Change(ChangeKind.CHANGED, "Infra", "Acme", "purpose", "a", "b")
    added = Change(ChangeKind.ADDED, "Infra", "Acme")
    assert clock.opens_window(added, ["transfer"], transfer_risk=True)
    assert not clock.opens_window(added, ["transfer"], transfer_risk=False)
    assert not clock.opens_window(purpose, ["transfer"])
    assert clock.opens_window(added, ["added"])  # other kinds unchanged
    assert clock.opens_window(purpose, ["transfer", "purpose"])
