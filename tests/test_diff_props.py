"""Properties of the differ on random entry lists built from a small alphabet, so rows collide.

Names repeat within a section and differ by case, punctuation or legal suffix, so pairing,
renames, moves and reworded headings are all exercised.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from diffcheck import apply_changes
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from policy_watch.diff import diff_entries, name_core, norm
from policy_watch.models import Change, ChangeKind, Entry

NAMES = ["Acme", "Acme, Inc.", "ACME LLC", "Beta Corp", "Zendesk, Inc.", "ZenDesk Inc", "Gamma", "Delta Ltd"]
SECTIONS = ["", "Infrastructure", "Service Subprocessors", "Group"]
PURPOSES = ["Hosting", "Email delivery", "Support", ""]
COUNTRIES = ["United States", "Germany", "United States, Germany", "Ireland"]
DATA = ["Customer data", "Metadata", "None"]

rows = st.builds(
    lambda s, n, p, c, d: Entry(s, n, p, c, (("Data", d),)),
    st.sampled_from(SECTIONS),
    st.sampled_from(NAMES),
    st.sampled_from(PURPOSES),
    st.sampled_from(COUNTRIES),
    st.sampled_from(DATA),
)
lists = st.lists(rows, max_size=10)


@st.composite
def edited(draw: st.DrawFn, old: Sequence[Entry]) -> list[Entry]:
    """A later version of ``old``: rows kept, edited, moved, renamed or dropped, and rows added."""
    out: list[Entry] = []
    for e in old:
        what = draw(st.sampled_from(["keep", "keep", "field", "move", "rename", "drop"]))
        if what == "field":
            e = Entry(
                e.section,
                e.entity,
                draw(st.sampled_from(PURPOSES)),
                draw(st.sampled_from(COUNTRIES)),
                e.extra,
            )
        elif what == "move":
            e = Entry(draw(st.sampled_from(SECTIONS)), e.entity, e.purpose, e.country, e.extra)
        elif what == "rename":
            e = Entry(e.section, draw(st.sampled_from(NAMES)), e.purpose, e.country, e.extra)
        if what != "drop":
            out.append(e)
    out += draw(st.lists(rows, max_size=3))
    return draw(st.permutations(out))


def namesakes_in_several_sections(entries: Sequence[Entry]) -> bool:
    spellings: dict[tuple[str, ...], set[str]] = defaultdict(set)
    sections: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for e in entries:
        spellings[name_core(e.entity)].add(norm(e.entity))
        sections[name_core(e.entity)].add(norm(e.section))
    return any(len(spellings[k]) > 1 and len(sections[k]) > 1 for k in spellings)


def key(e: Entry) -> tuple[str, str]:
    return norm(e.section), norm(e.entity)


def rewrap(e: Entry) -> Entry:
    """The same row as a page might render it: &nbsp;, line breaks, padding, stray spaces."""
    return Entry(
        e.section + " ",
        " " + e.entity.replace(" ", "\u00a0"),
        e.purpose.replace(" ", "\n  "),
        f"  {e.country}\n",
        tuple((k, f"{v} ") for k, v in e.extra),
    )


def touched_keys(changes: Sequence[Change]) -> set[tuple[str, str]]:
    """Keys whose rows a change names only by section and name: which namesake it was is not recorded."""
    out: set[tuple[str, str]] = set()
    for c in changes:
        if c.kind in (ChangeKind.ADDED, ChangeKind.REMOVED):
            out.add((norm(c.section), norm(c.entity)))
        elif c.kind is ChangeKind.RENAMED:
            out |= {(s, norm(n)) for s in map(norm, SECTIONS) for n in (c.old or "", c.new or "")}
        elif c.field == "section":
            out |= {(s, norm(c.entity)) for s in map(norm, SECTIONS)} if c.entity else set()
    if any(c.field == "section" and not c.entity for c in changes):
        out |= {(norm(s), norm(n)) for s in SECTIONS for n in NAMES}
    return out


def field_values(entries: Sequence[Entry]) -> dict[tuple[str, str], Counter[tuple[str, str]]]:
    out: dict[tuple[str, str], Counter[tuple[str, str]]] = defaultdict(Counter)
    for e in entries:
        for f, v in (("purpose", e.purpose), ("country", e.country), *e.extra):
            out[key(e)][(f, norm(v))] += 1
    return out


@settings(max_examples=200, deadline=None)
@given(lists)
def test_a_list_against_itself_has_no_changes(a: list[Entry]) -> None:
    assert diff_entries(a, a) == []


@settings(max_examples=200, deadline=None)
@given(st.data(), lists)
def test_reordered_and_rewrapped_rows_have_no_changes(data: st.DataObject, a: list[Entry]) -> None:
    b = [rewrap(e) for e in data.draw(st.permutations(a))]
    assert diff_entries(a, b) == []


@settings(max_examples=200, deadline=None)
@given(st.data(), lists)
def test_applying_the_diff_gives_the_new_list(data: st.DataObject, a: list[Entry]) -> None:
    b = data.draw(st.one_of(edited(a), lists))
    # A change names a row by section and name: with namesakes (one name, several spellings) in
    # more than one section, replaying renames and moves cannot tell which namesake moved
    # (test_diff.py's xfail). About 1 example in 1,800 of this generator; left out here.
    assume(not namesakes_in_several_sections([*a, *b]))
    changes = diff_entries(a, b)
    got = apply_changes(a, changes)
    # Every row is where the diff says: same (section, name) multiset, so adds, removals,
    # renames and moves are all accounted for.
    assert Counter(map(key, got)) == Counter(map(key, b)), changes
    # Cell values of the rows no add, removal, rename or move touched are exactly the new ones.
    # (A change names a row by section and name, so among namesakes it holds per column.)
    skip = touched_keys(changes)
    want, have = field_values(b), field_values(got)
    for k in want.keys() | have.keys():
        if k not in skip:
            assert have.get(k) == want.get(k), (k, changes)


@settings(max_examples=200, deadline=None)
@given(st.data(), lists)
def test_same_rows_by_name_are_never_added_or_removed(data: st.DataObject, a: list[Entry]) -> None:
    b = [
        Entry(
            e.section,
            e.entity,
            data.draw(st.sampled_from(PURPOSES)),
            data.draw(st.sampled_from(COUNTRIES)),
            e.extra,
        )
        for e in data.draw(st.permutations(a))
    ]
    changes = diff_entries(a, b)
    # Namesakes may pair differently once their cells change, but nothing is added, removed,
    # renamed or moved, and no row reports more than its three cells.
    assert all(c.kind is ChangeKind.CHANGED and c.field in ("purpose", "country", "Data") for c in changes), (
        changes
    )
    assert len(changes) <= 3 * len(a)
