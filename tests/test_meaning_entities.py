"""One name per company: keys, names in brackets, the alias table in both directions, the report."""

from __future__ import annotations

import pytest

from policy_watch.diff import diff_entries
from policy_watch.meaning.countries import gazetteer
from policy_watch.meaning.entities import (
    Listing,
    alias_table,
    concentration,
    identify,
    name_key,
    spellings,
    who,
)
from policy_watch.models import ChangeKind, Entry

TABLE = alias_table()
GAZ = gazetteer()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Amazon Web Services, Inc.", "Amazon Web Services"),
        ("OpenAI, L.L.C.", "OpenAI LLC"),
        ("OpenAI, Inc", "OpenAI"),
        ("Anthropic, PBC", "Anthropic PBC"),
        ("Intercom, Inc..", "Intercom"),
        ("HelpScout", "Help Scout"),
        ("Elasticsearch B.V.", "elasticsearch"),
        ("Sentry.io", "Sentry"),
        ("Müller GmbH", "Muller"),
        ("The Rocket Science Group LLC", "Rocket Science Group"),
    ],
)
def test_legal_suffixes_punctuation_and_case_do_not_count(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(
    ("a", "b"), [("GitLab Ireland Ltd", "GitLab Ltd"), ("Google Analytics", "Google"), ("Box", "Dropbox")]
)
def test_different_names_stay_different(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


def test_names_in_brackets_and_after_dba_or_aka() -> None:
    assert spellings("Amazon.com, Inc. (Amazon Web Services)") == ("Amazon.com, Inc.", "Amazon Web Services")
    assert spellings("NexMo (aka Vonage)") == ("NexMo", "Vonage")
    assert spellings("AlphaAI Technologies Inc. dba Tavily") == ("AlphaAI Technologies Inc.", "Tavily")
    assert spellings("Stratus Midco d/b/a Contegix") == ("Stratus Midco", "Contegix")
    assert identify("Google (EU)", TABLE, GAZ).names == {"google"}  # a place in brackets is not a name


def test_alias_table_joins_short_names_to_their_company() -> None:
    for name in (
        "AWS",
        "Amazon Web Services, Inc.",
        "Amazon.com, Inc. (Amazon Web Services)",
        "Amazon Web Services Inc (AWS)",
    ):
        assert identify(name, TABLE, GAZ).company == "Amazon Web Services"
    assert identify("GCP", TABLE, GAZ).key == identify("Google Cloud Platform (GCP)", TABLE, GAZ).key
    assert identify("Azure (Microsoft)", TABLE, GAZ).key == identify("Microsoft (Azure)", TABLE, GAZ).key
    assert identify("Twilio Inc. (SendGrid)", TABLE, GAZ).company == "Twilio SendGrid"


LISTINGS = [
    Listing("Alpha", "Amazon Web Services, Inc.", country="United States"),
    Listing("Beta", "AWS", country="Ireland"),
    Listing("Gamma", "Amazon.com, Inc. (Amazon Web Services)", country="USA"),
    Listing("Delta", "Lawson Software"),
    Listing("Delta", "Twilio Inc. (SendGrid)", country="US"),
    Listing("Alpha", "Google Analytics", country="Varies"),
    Listing("Beta", "Google LLC", country="US"),
]


@pytest.mark.parametrize("query", ["AWS", "Amazon Web Services", "amazon web services, inc", "aws amazon"])
def test_who_finds_every_spelling_in_both_directions(query: str) -> None:
    found = {(m.listing.vendor, m.listing.entity) for m in who(query, LISTINGS, TABLE, GAZ)}
    assert found == {
        ("Alpha", "Amazon Web Services, Inc."),
        ("Beta", "AWS"),
        ("Gamma", "Amazon.com, Inc. (Amazon Web Services)"),
    }


def test_a_name_given_in_brackets_is_found_without_joining_its_other_names() -> None:
    # "Amazon.com" is no alias of AWS: only the listing that gives both names is found
    assert [m.listing.vendor for m in who("Amazon.com Inc", LISTINGS, TABLE, GAZ)] == ["Gamma"]


def test_who_says_how_each_listing_matched() -> None:
    how = {m.listing.entity: m.how for m in who("AWS", LISTINGS, TABLE, GAZ)}
    assert how == {
        "AWS": "same name",
        "Amazon Web Services, Inc.": "alias of Amazon Web Services",
        "Amazon.com, Inc. (Amazon Web Services)": "alias of Amazon Web Services",
    }
    assert {m.listing.entity: m.how for m in who("Twilio", LISTINGS, TABLE, GAZ)} == {
        "Twilio Inc. (SendGrid)": "same name"
    }
    tavily = [Listing("E", "AlphaAI Technologies Inc. dba Tavily")]
    assert [m.how for m in who("Tavily", tavily, TABLE, GAZ)] == ["one of the names it gives"]
    assert {m.listing.entity: m.how for m in who("google", LISTINGS, TABLE, GAZ)} == {
        "Google LLC": "same name",
        "Google Analytics": "text",
    }


def test_user_aliases_extend_the_table() -> None:
    own = alias_table((("Acme Cloud", ("ACX", "Acme Hosting")),))
    listings = [Listing("A", "ACX Inc."), Listing("B", "Acme Hosting GmbH"), Listing("C", "AWS")]
    assert {m.listing.vendor for m in who("Acme Cloud", listings, own, GAZ)} == {"A", "B"}
    assert {m.listing.vendor for m in who("acx", listings, own, GAZ)} == {"A", "B"}
    assert {m.listing.vendor for m in who("acx", listings, TABLE, GAZ)} == {
        "A"
    }  # shipped table: no such alias


def test_concentration_groups_spellings_most_vendors_first() -> None:
    report = concentration(LISTINGS, TABLE, GAZ)
    top = report[0]
    assert top.name == "Amazon Web Services" and top.vendors == ("Alpha", "Beta", "Gamma")
    assert top.countries == ("US", "IE")
    assert top.spellings == ("Amazon Web Services, Inc.", "Amazon.com, Inc. (Amazon Web Services)", "AWS")
    assert [len(c.vendors) for c in report] == sorted((len(c.vendors) for c in report), reverse=True)
    analytics = next(c for c in report if c.name == "Google Analytics")
    assert analytics.unrecognised == ("Varies",)


@pytest.mark.parametrize(
    ("old", "new"), [("Amazon Web Services", "AWS"), ("SendGrid", "Twilio"), ("Mailgun", "SendGrid")]
)
def test_the_alias_table_never_hides_a_change_within_a_vendor(old: str, new: str) -> None:
    changes = diff_entries([Entry("Infra", old, "Email", "US")], [Entry("Infra", new, "Email", "US")])
    assert changes and {c.kind for c in changes} <= {ChangeKind.RENAMED, ChangeKind.ADDED, ChangeKind.REMOVED}


def test_an_empty_query_finds_nothing() -> None:
    listings = [*LISTINGS, Listing("Z", "—")]
    assert who("", listings, TABLE, GAZ) == [] and who(" , ", listings, TABLE, GAZ) == []
