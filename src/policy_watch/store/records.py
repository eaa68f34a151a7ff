"""Values the store hands out, and how content is keyed and packed. Pure: no database."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import zstandard

from policy_watch.models import Entry, ParsedPage, SnapshotStatus
from policy_watch.store.schema import row_key

ZSTD_LEVEL = 3  # level 9 saves 13% of space for 5x the time; deltas keep the history small anyway
MAX_DELTA_DEPTH = 16  # a body is rebuilt from at most this many deltas


Cells = tuple[str, str, str, str, str]  # section, entity, purpose, country, extra (JSON)


@dataclass(frozen=True, slots=True)
class PageRows:
    """A page's entries as stored: each one's cells and ``row_key``, in order. Made once per page
    (``page_rows``) and used both for its content hash and to store its rows."""

    cells: list[Cells]
    keys: list[bytes]


def page_rows(entries: Sequence[Entry]) -> PageRows:
    cells = [row_cells(e) for e in entries]
    return PageRows(cells, [row_key(c) for c in cells])


def content_hash(page: ParsedPage, rows: PageRows | None = None) -> str:
    """Hash of the normalised content: rows (order-free), columns and the declared date.
    ``rows`` is ``page_rows(page.entries)`` when the caller has it."""
    digest = hashlib.sha256()
    for key in sorted((rows or page_rows(page.entries)).keys):
        digest.update(key)
    tail = [sorted([s, list(c)] for s, c in page.columns), iso_date(page.last_modified)]
    digest.update(json.dumps(tail, ensure_ascii=False).encode())
    return digest.hexdigest()


def pack_body(body: bytes) -> bytes:
    """A body compressed on its own (zstd releases the GIL: fetch threads can do this in parallel)."""
    return bytes(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body))


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class VendorState:
    id: int
    name: str
    etag: str | None
    last_modified_header: str | None
    body_hash: str | None
    consecutive_failures: int
    failing: bool
    latest_id: int | None = None  # the latest snapshot (the held suspect one, if any) when the run started
    latest_status: SnapshotStatus | None = None
    latest_entries: int = 0
    reading_config: str | None = None  # how the vendor's current page was read (None: not known)


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    id: int
    vendor_id: int
    content_hash: str
    status: SnapshotStatus
    first_seen: str
    last_seen: str
    declared_date: date | None
    entries: tuple[Entry, ...]
    columns: tuple[tuple[str, tuple[str, ...]], ...]
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    body_hash: str | None = None  # the raw page it was read from
    reading_of: int | None = None  # set on a later reading of an earlier snapshot's raw page

    def page(self) -> ParsedPage:
        return ParsedPage(
            entries=self.entries, last_modified=self.declared_date, columns=self.columns, headers=self.headers
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """One message for one target, written to the outbox with the changes it reports."""

    target: str
    vendor: str
    kind: str
    dedupe_key: str
    title: str
    body_markdown: str
    body_html: str
    body_text: str
    held: bool = False  # digest targets: merged into one message at the end of the run
    level: str = "info"  # apprise's notify type: info, success, warning, failure


def iso_date(d: date | None) -> str | None:
    return d.isoformat() if d else None


def columns_json(page: ParsedPage) -> str:
    headers = dict(page.headers)
    return json.dumps([[s, list(c), list(headers.get(s, ()))] for s, c in page.columns], ensure_ascii=False)


def row_cells(e: Entry) -> Cells:
    extra = json.dumps(dict(e.extra), ensure_ascii=False) if e.extra else "{}"
    return (e.section, e.entity, e.purpose, e.country, extra)


def entry_from_row(row: dict[str, Any]) -> Entry:
    extra = json.loads(row["extra"] or "{}")
    return Entry(
        section=row["section"] or "",
        entity=row["entity"],
        purpose=row["purpose"] or "",
        country=row["country"] or "",
        extra=tuple(extra.items()),
    )


def pack_delta(body: bytes, previous: bytes) -> bytes:
    """``body`` compressed with ``previous`` as a raw-content dictionary: a small edit costs bytes."""
    zdict = zstandard.ZstdCompressionDict(previous, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return bytes(zstandard.ZstdCompressor(level=ZSTD_LEVEL, dict_data=zdict).compress(body))


def unpack(data: bytes, codec: str, previous: bytes | None = None) -> bytes:
    if codec == "zlib":  # databases written before bodies became zstd
        import zlib

        return zlib.decompress(data)
    if codec == "zstd":
        return bytes(zstandard.ZstdDecompressor().decompress(data))
    assert previous is not None, "a delta needs the body it was made against"
    zdict = zstandard.ZstdCompressionDict(previous, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return bytes(zstandard.ZstdDecompressor(dict_data=zdict).decompress(data))
