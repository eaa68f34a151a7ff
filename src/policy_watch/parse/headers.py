"""Mapping table header texts to the canonical fields: entity, purpose, country."""

from __future__ import annotations

import re
from dataclasses import dataclass

ENTITY, PURPOSE, COUNTRY = "entity", "purpose", "country"
FIELDS = (ENTITY, COUNTRY, PURPOSE)  # assignment order on equal scores

_ENTITY_NAMES = {
    "name", "names", "entity", "entity name", "name of entity", "legal entity", "legal entity name",
    "name of subprocessor", "name of sub processor", "subprocessor", "sub processor", "subprocessors",
    "sub processors", "subprocessor name", "sub processor name", "subprocessor entity", "processor",
    "name of processor", "third party entity", "third party", "third party subprocessor",
    "third party name", "affiliate", "affiliates", "affiliate entity", "affiliate name",
    "service provider", "service providers", "provider", "provider name", "vendor", "vendor name",
    "vendors", "company", "company name", "cdn provider", "supplier", "supplier name", "partner",
    "organisation", "organization", "recipient", "subcontractor", "sub contractor",
    "名称", "实体", "实体名称", "子处理者", "子处理商", "子处理方", "子处理者名称", "供应商", "服务提供商", "公司",
}
_PURPOSE_NAMES = {
    "purpose", "purposes", "purpose of processing", "processing purpose", "description of processing",
    "description purpose", "purpose description", "services performed", "service provided",
    "services provided", "service", "services", "function", "nature of processing",
    "nature and purpose of processing", "subprocessor activity", "sub processor activity", "description",
    "description of cdn services", "processing activity", "processing activities", "activity",
    "activities", "type of service", "service type", "role", "purpose of use", "use",
    "目的", "处理目的", "用途", "服务", "说明", "描述", "处理说明", "处理活动",
}
# Where the data is processed beats where the company sits.
_PROCESSING_PLACE_NAMES = {
    "location of processing", "locations of processing", "location s of processing",
    "country of processing", "countries of processing", "processing location", "processing locations",
    "data location", "data locations", "hosting location", "hosting locations", "cdn location",
    "location of data processing", "data processing location", "location of data", "server location",
    "处理位置", "处理地点", "数据位置",
}
_PLACE_NAMES = {
    "country", "countries", "entity country", "location", "locations", "region", "regions",
    "location of subprocessors", "location of subprocessor", "location of sub processors",
    "subprocessor location", "country of subprocessor", "jurisdiction", "geography",
    "国家", "位置", "地点", "国家 地区", "地区", "所在地",
}
_CORPORATE_PLACE_NAMES = {
    "corporate location", "headquarters", "hq", "corporate headquarters", "company location",
    "registered office", "registered address", "country of incorporation", "公司所在地",
}
_ENTITY_WORDS = {"subprocessor", "subprocessors", "processor", "vendor", "provider", "entity", "company",
                 "affiliate", "supplier", "partner", "organisation", "organization", "name"}
_PURPOSE_WORDS = {"purpose", "purposes", "description", "service", "services", "function", "activity",
                  "activities", "nature", "role"}
_PLACE_WORDS = {"country", "countries", "location", "locations", "region", "regions", "jurisdiction", "hosting"}
_CORPORATE_WORDS = {"corporate", "headquarters", "hq", "registered", "incorporation"}
_NON_SUBPROCESSOR_WORDS = {"cookie", "cookies", "expiration", "expiry", "duration", "price", "pricing", "plan"}

_PUNCT = re.compile(r"[\W_]+")
_FOOTNOTE = re.compile(r"(?:\s*[*†‡]+|\s*\(\d\)|\s*\[\d+\])+$")


def normalise_header(text: str) -> str:
    """``"Location(s) of Processing*"`` → ``"location s of processing"``."""
    text = _FOOTNOTE.sub("", text.strip()).lower().replace("sub-processor", "subprocessor")
    return " ".join(_PUNCT.sub(" ", text).split())


def _scores(header: str) -> list[tuple[int, str]]:
    """Candidate fields of one header, with how sure the match is (higher is surer)."""
    norm = normalise_header(header)
    words = set(norm.split())
    found: list[tuple[int, str]] = []
    if norm in _ENTITY_NAMES:
        found.append((3, ENTITY))
    elif words & _ENTITY_WORDS and not words & (_PLACE_WORDS | _PURPOSE_WORDS):
        found.append((1, ENTITY))
    if norm in _PROCESSING_PLACE_NAMES:
        found.append((4, COUNTRY))
    elif norm in _PLACE_NAMES:
        found.append((3, COUNTRY))
    elif norm in _CORPORATE_PLACE_NAMES or (words & _PLACE_WORDS and words & _CORPORATE_WORDS):
        found.append((0, COUNTRY))
    elif words & _PLACE_WORDS:
        found.append((2 if "processing" in words or "data" in words else 1, COUNTRY))
    if norm in _PURPOSE_NAMES:
        found.append((3, PURPOSE))
    elif words & _PURPOSE_WORDS:
        found.append((1, PURPOSE))
    return found


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which column holds which field; every other column is an extra, keyed by its header."""

    entity: int
    purpose: int | None
    country: int | None
    names: tuple[str, ...]  # per column: a canonical field or the extra column's header

    @property
    def extras(self) -> tuple[tuple[int, str], ...]:
        mapped = {self.entity, self.purpose, self.country}
        return tuple((i, name) for i, name in enumerate(self.names) if i not in mapped)


def looks_like_other_table(headers: list[str]) -> bool:
    """Cookie, pricing and similar tables that may still have a "Provider" column."""
    return any(set(normalise_header(h).split()) & _NON_SUBPROCESSOR_WORDS for h in headers)


def _extra_names(headers: list[str], fields: dict[int, str]) -> tuple[str, ...]:
    names: list[str] = []
    for i, header in enumerate(headers):
        name = fields.get(i) or header or f"column {i + 1}"
        while name in names:
            name = f"{name} ({i + 1})"
        names.append(name)
    return tuple(names)


def map_label(label: str) -> str | None:
    """The field a ``Label:`` in a card stands for, if any."""
    found = sorted(_scores(label), key=lambda candidate: -candidate[0])
    return found[0][1] if found and found[0][0] > 0 else None


def map_columns(headers: list[str]) -> ColumnMap | None:
    """Assign fields to columns, surest first; None when no column holds the entity."""
    candidates = sorted(
        (-score, FIELDS.index(field), col, field)
        for col, header in enumerate(headers)
        for score, field in _scores(header)
    )
    fields: dict[int, str] = {}
    taken: set[str] = set()
    for _, _, col, field in candidates:
        if col not in fields and field not in taken:
            fields[col] = field
            taken.add(field)
    by_field = {field: col for col, field in fields.items()}
    if ENTITY not in by_field:
        return None
    return ColumnMap(by_field[ENTITY], by_field.get(PURPOSE), by_field.get(COUNTRY), _extra_names(headers, fields))


def positional_map(width: int) -> ColumnMap:
    """No header: first column is the entity, then purpose, then country."""
    names = tuple((ENTITY, PURPOSE, COUNTRY)[i] if i < 3 else f"column {i + 1}" for i in range(width))
    return ColumnMap(0, 1 if width > 1 else None, 2 if width > 2 else None, names)
