"""Transfers outside the EEA (GDPR chapter V): which places a change sends data to, and on what terms.

The EEA members and the EU adequacy decisions come from ``data/transfers.toml`` (dated, with its
source); config.toml's ``[transfers]`` table extends or overrides them. A place is:

- inside the EEA (no transfer);
- outside with a full adequacy decision (no safeguards needed);
- outside with a partial decision (Canada: commercial organisations; United States: DPF
  participants only): listed with its condition, never cleared;
- outside with no decision: standard contractual clauses and a transfer impact assessment needed;
- a region wider than the EEA ("Europe", "Asia"): countries not named, so not known to be covered.

Text the reader could not place (``Location.unread``) is reported as such and never counted as a risk.
"""

from __future__ import annotations

import enum
import functools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from policy_watch.meaning.countries import Gazetteer, Location, country_name, gazetteer
from policy_watch.models import Change, ChangeKind, Entry


class Adequacy(enum.StrEnum):
    EEA = "eea"
    FULL = "adequate"
    PARTIAL = "partial"
    NONE = "none"
    UNKNOWN = "unknown"  # a region that names no country


REGION_CONDITION = "a region, not a country: ask the vendor which countries"


@dataclass(frozen=True, slots=True)
class TransferOverrides:
    """config.toml's ``[transfers]`` table, validated by config."""

    adequate: tuple[str, ...] = ()  # codes treated as fully adequate (a newer decision)
    none: tuple[str, ...] = ()  # codes treated as having no adequacy (a stricter company policy)
    partial: tuple[tuple[str, str], ...] = ()  # code -> condition
    places: tuple[tuple[str, str], ...] = ()  # place name -> code, read like the shipped cities


@dataclass(frozen=True, slots=True)
class TransferRisk:
    """One place outside the EEA without full adequacy."""

    place: str  # alpha-2 code or region label
    adequacy: Adequacy
    condition: str = ""

    def to_json(self) -> dict[str, str]:
        return {"place": self.place, "adequacy": self.adequacy.value, "condition": self.condition}

    def text(self) -> str:
        """``US: adequacy only for DPF-certified organisations``, ``IN: no adequacy decision``."""
        return f"{self.place}: {self.condition or 'no adequacy decision'}"


@dataclass(frozen=True, slots=True)
class TransferRules:
    eea: frozenset[str]
    adequate: frozenset[str]
    partial: tuple[tuple[str, str], ...]
    compiled: str
    gazetteer: Gazetteer

    def status(self, code: str) -> tuple[Adequacy, str]:
        if code in self.eea:
            return Adequacy.EEA, ""
        for c, condition in self.partial:
            if c == code:
                return Adequacy.PARTIAL, condition
        if code in self.adequate:
            return Adequacy.FULL, ""
        return Adequacy.NONE, ""

    def risks(self, location: Location) -> tuple[TransferRisk, ...]:
        """The places of ``location`` outside the EEA without full adequacy, in cell order."""
        out = []
        for code in location.codes:
            adequacy, condition = self.status(code)
            if adequacy in (Adequacy.PARTIAL, Adequacy.NONE):
                out.append(TransferRisk(code, adequacy, condition))
        out += [
            TransferRisk(r.label, Adequacy.UNKNOWN, REGION_CONDITION)
            for r in location.regions
            if not r.inside_eea
        ]
        return tuple(out)


@functools.cache
def _shipped() -> dict[str, object]:
    text = resources.files("policy_watch.meaning").joinpath("data/transfers.toml").read_text("utf-8")
    return tomllib.loads(text)


@functools.cache
def rules(overrides: TransferOverrides = TransferOverrides()) -> TransferRules:
    """The shipped lists with config.toml's overrides applied (built once per distinct overrides)."""
    data = _shipped()
    eea = frozenset(data["eea"]["members"])  # type: ignore[index]
    adequacy: Mapping[str, object] = data["adequacy"]  # type: ignore[assignment]
    full = set(adequacy["full"])  # type: ignore[call-overload]
    partial = dict(adequacy["partial"])  # type: ignore[call-overload]
    for code in overrides.adequate:
        full.add(code)
        partial.pop(code, None)
    for code, condition in overrides.partial:
        full.discard(code)
        partial[code] = condition
    for code in overrides.none:
        full.discard(code)
        partial.pop(code, None)
    gaz = gazetteer().extended(dict(overrides.places)) if overrides.places else gazetteer()
    compiled = str(data["source"]["compiled"])  # type: ignore[index]
    return TransferRules(eea, frozenset(full), tuple(sorted(partial.items())), compiled, gaz)


@dataclass(frozen=True, slots=True)
class TransferMeaning:
    """Where one change sends data: the entry's location after the change and its risks."""

    location: Location
    risks: tuple[TransferRisk, ...]  # every place after the change outside the EEA without full adequacy
    new: tuple[TransferRisk, ...]  # those the change brought (all of them for an added entry)
    added: bool  # an entry added, rather than a location changed

    @property
    def countries(self) -> tuple[str, ...]:
        return self.location.places

    @property
    def carries_risk(self) -> bool:
        """Whether the change sends data somewhere outside the EEA without full adequacy, new."""
        return bool(self.new)

    def to_json(self) -> dict[str, object]:
        return {
            "countries": list(self.countries),
            "transfer_risk": [r.to_json() for r in self.risks],
            "location_unrecognised": list(self.location.unread),
        }

    def to_text(self) -> dict[str, str]:
        """The same fields as one line each, for CSV."""
        return {
            "countries": ", ".join(self.countries),
            "transfer_risk": "; ".join(r.text() for r in self.risks),
            "location_unrecognised": "; ".join(self.location.unread),
        }


def meaning_of(
    kind: str, field: str | None, old: str | None, new: str | None, location: str | None, rules: TransferRules
) -> TransferMeaning | None:
    """What a stored change means for transfers; None for a change that adds or changes no location.

    ``location`` is the entry's location cell after the change, needed for an added entry (whose
    change row holds no cell values); a changed location reads ``old`` and ``new``.
    """
    read = rules.gazetteer.read
    if kind == "added":
        after = read(location or "")
        risks = rules.risks(after)
        return TransferMeaning(after, risks, risks, added=True)
    if kind == "changed" and field == "country":
        before, after = read(old or ""), read(new or "")
        risks = rules.risks(after)
        known = set(before.places)
        return TransferMeaning(after, risks, tuple(r for r in risks if r.place not in known), added=False)
    return None


def _name(code: str) -> str:
    return country_name(code) or code


def sentence(entity: str, meaning: TransferMeaning, rules: TransferRules) -> str:
    """The reviewer's first question, answered in words (page text inside: escape it when rendering).

    ``Infosys Limited (added) — India: outside the EEA, no adequacy decision; safeguards needed``;
    ``Acme (location changed) — new transfer to US: adequacy only for DPF-certified organisations``.
    """
    loc = meaning.location
    if meaning.added:
        parts = [
            _risk_words(r, _name(r.place) if r.adequacy is not Adequacy.UNKNOWN else r.place, outside=True)
            for r in meaning.risks
        ]
        adequate = [_name(c) for c in loc.codes if rules.status(c)[0] is Adequacy.FULL]
        inside = [_name(c) for c in loc.codes if rules.status(c)[0] is Adequacy.EEA]
        inside += [r.label for r in loc.regions if r.inside_eea]
        if adequate:
            parts.append(f"{', '.join(adequate)}: outside the EEA, adequacy decision")
        if inside:
            parts.append(f"{', '.join(inside)}: inside the EEA")
        head = f"{entity} (added)"
    else:
        parts = [f"new transfer to {_risk_words(r, r.place)}" for r in meaning.new]
        if not parts:
            parts.append("no new transfer outside the EEA without adequacy")
        head = f"{entity} (location changed)"
    parts += [f"location not recognised: {text!r}" for text in loc.unread]
    if not loc.places and not loc.unread:
        parts.append("no location given")
    return f"{head} — " + "; ".join(parts)


def _risk_words(r: TransferRisk, where: str, outside: bool = False) -> str:
    if r.adequacy is Adequacy.NONE:
        return f"{where}: outside the EEA, no adequacy decision; safeguards needed"
    if r.adequacy is Adequacy.PARTIAL and outside:
        return f"{where}: outside the EEA, {r.condition}"
    return f"{where}: {r.condition}"


def for_changes(
    changes: Sequence[Change], entries: Sequence[Entry], rules: TransferRules
) -> list[TransferMeaning | None]:
    """``meaning_of`` each change of a diff; an added entry's location comes from ``entries`` (the new page)."""
    located: dict[tuple[str, str], list[str]] = {}
    for e in entries:
        located.setdefault((e.section, e.entity), []).append(e.country)
    out = []
    for c in changes:
        cells = located.get((c.section, c.entity), []) if c.kind is ChangeKind.ADDED else []
        location = "\n".join(dict.fromkeys(cells))
        out.append(meaning_of(c.kind.value, c.field, c.old, c.new, location, rules))
    return out
