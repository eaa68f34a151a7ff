"""Location cells read into ISO codes, regions and unread text: real cells first, then the rules."""

from __future__ import annotations

import pytest

from policy_watch.meaning.countries import gazetteer, read_location

# Real location cells of the corpus (shared/corpus/rendered/<file>), with what they name.
# (cell, ISO codes, regions, text left unread)
CORPUS_CELLS = [
    ("United States", ["US"], [], [], "37signals-company-processors__2020-06-08"),
    ("US", ["US"], [], [], "37signals-company-processors__2020-06-08"),
    ("EU", [], ["EU"], [], "basecamp__2023-06-08"),
    ("[Add region]", [], [], ["Add region"], "bento__2026-03-19"),
    ("Varies", [], [], ["Varies"], "bento__2026-03-19_2"),
    ("European Union", [], ["EU"], [], "bento__2026-03-19_2"),
    (
        "United States, France, Switzerland, and Japan",
        ["US", "FR", "CH", "JP"],
        [],
        [],
        "github-subprocessors__2024-04-17_2",
    ),
    (
        "United States, France,\nSwitzerland, and Japan",
        ["US", "FR", "CH", "JP"],
        [],
        [],
        "corpus README: a <br> in the cell",
    ),
    ("Australia", ["AU"], [], [], "github-subprocessors__2024-04-17_4"),
    ("Netherlands", ["NL"], [], [], "github-subprocessors__2024-04-17_4"),
    ("India", ["IN"], [], [], "github-subprocessors__2024-04-17_4"),
    ("United States, Belgium", ["US", "BE"], [], [], "github-subprocessors__2025-05-12"),
    (
        "Australia, Brazil, Canada, France, Japan, Norway, Spain, Sweden, Switzerland, United Kingdom, United States",
        ["AU", "BR", "CA", "FR", "JP", "NO", "ES", "SE", "CH", "GB", "US"],
        [],
        [],
        "github-subprocessors__2025-05-12",
    ),
    ("United States, Belgium, Singapore", ["US", "BE", "SG"], [], [], "github-subprocessors__2025-05-28"),
    ("United States, Iceland, Germany", ["US", "IS", "DE"], [], [], "github-subprocessors__2025-08-29"),
    ("United States, Canada", ["US", "CA"], [], [], "github-subprocessors__2026-03-11"),
    ("Israel", ["IL"], [], [], "github-subprocessors-and-cookies__2020-08-03"),
    ("United Kingdom", ["GB"], [], [], "gitlab__v1"),
    ("South Korea", ["KR"], [], [], "gitlab__v1"),
    ("United States and European Union", ["US"], ["EU"], [], "gitlab__v1"),
    ("United States and United Kingdom", ["US", "GB"], [], [], "gitlab__v1"),
    ("European Economic Area and Australia", ["AU"], ["EEA"], [], "gitlab__v1"),
    ("United States and Canada", ["US", "CA"], [], [], "gitlab__v1"),
    ("European Economic Area", [], ["EEA"], [], "gitlab__v1"),
    ("United States and Portugal", ["US", "PT"], [], [], "gitlab__v2"),
    (
        "United States* *For GitLab Dedicated Customers the hosting location is your choice from our available AWS regions",
        ["US"],
        [],
        ["For GitLab Dedicated Customers the hosting location is your choice from our available AWS regions"],
        "gitlab__v3",
    ),
    (
        "European Economic Area, Africa, and Middle East",
        [],
        ["EEA", "Africa", "Middle East"],
        [],
        "gitlab__v3",
    ),
    ("USA, Germany, Ireland", ["US", "DE", "IE"], [], [], "sage-bionetworks__2024-08-23"),
    ("USA", ["US"], [], [], "sage-bionetworks__2024-08-23"),
    ("UK", ["GB"], [], [], "sage-bionetworks__2024-08-23"),
    ("United States, Europe", ["US"], ["Europe"], [], "tailscale__2023-06-30"),
    ("United States, Europen Economic Area", ["US"], [], ["Europen Economic Area"], "tailscale__2023-12-03"),
    ("United States, European Economic Area", ["US"], ["EEA"], [], "tailscale__2023-12-03_2"),
]


@pytest.mark.parametrize(
    ("cell", "codes", "regions", "unread", "source"),
    CORPUS_CELLS,
    ids=[f"{c[4]}:{c[0][:30]}" for c in CORPUS_CELLS],
)
def test_real_location_cells(
    cell: str, codes: list[str], regions: list[str], unread: list[str], source: str
) -> None:
    loc = read_location(cell)
    assert list(loc.codes) == codes
    assert [r.label for r in loc.regions] == regions
    assert list(loc.unread) == unread


FORMS = [
    ("U.S.", ["US"]),
    ("U.S.A.", ["US"]),
    ("United States of America", ["US"]),
    ("the United States", ["US"]),
    ("Deutschland", ["DE"]),
    ("Allemagne", ["DE"]),
    ("España", ["ES"]),
    ("Österreich", ["AT"]),
    ("Russian Federation", ["RU"]),
    ("Korea, Republic of", ["KR"]),
    ("Republic of Korea", ["KR"]),
    ("Bosnia and Herzegovina", ["BA"]),
    ("Trinidad and Tobago, UK", ["TT", "GB"]),
    ("the Netherlands", ["NL"]),
    ("Frankfurt", ["DE"]),
    ("Dublin; London", ["IE", "GB"]),
    ("eu-central-1", ["DE"]),
    ("USA (Virginia)", ["US"]),
    ("DE", ["DE"]),
    ("GBR", ["GB"]),
    ("Ireland / Germany", ["IE", "DE"]),
    ("Ireland\nGermany", ["IE", "DE"]),
    ("United States¹", ["US"]),
    ("Viet Nam", ["VN"]),
    ("Vietnam", ["VN"]),
    ("Türkiye", ["TR"]),
]


@pytest.mark.parametrize(("cell", "codes"), FORMS)
def test_names_short_forms_abbreviations_and_cities(cell: str, codes: list[str]) -> None:
    loc = read_location(cell)
    assert (list(loc.codes), loc.unread) == (codes, ())


@pytest.mark.parametrize(
    "cell", ["Georgia", "NA", "Atlantis", "Cambridge", "Amerika Samoa Islands", "hosted in the cloud"]
)
def test_uncertain_text_is_reported_not_guessed(cell: str) -> None:
    loc = read_location(cell)
    assert loc.codes == () and loc.regions == ()
    assert loc.unread == (cell,)


def test_a_place_named_twice_is_listed_once_and_empty_cells_name_nothing() -> None:
    assert read_location("US, USA and United States").codes == ("US",)
    empty = read_location("  ")
    assert (empty.codes, empty.regions, empty.unread) == ((), (), ())


def test_regions_stay_regions_and_know_whether_they_are_inside_the_eea() -> None:
    loc = read_location("EEA, Europe, APAC")
    assert [(r.label, r.inside_eea) for r in loc.regions] == [
        ("EEA", True),
        ("Europe", False),
        ("APAC", False),
    ]
    assert loc.places == ("EEA", "Europe", "APAC")


def test_user_places_extend_the_gazetteer() -> None:
    gaz = gazetteer().extended({"Ashburn DC-3": "US"})
    assert gaz.read("Ashburn DC-3, Frankfurt").codes == ("US", "DE")
    assert read_location("Ashburn DC-3").unread == ("Ashburn DC-3",)  # the shipped one is unchanged
