"""Atom feeds of changes (RFC 4287): one entry per set of changes a run found on a vendor's page.

Built with ElementTree, so every value is escaped; the content is plain text (``type="text"``),
so a feed reader never renders page text as markup; characters XML 1.0 cannot carry are dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from policy_watch.models import Change, ChangeKind
from policy_watch.render import describe, summary
from policy_watch.store.reading import ChangeRow

ATOM = "http://www.w3.org/2005/Atom"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    return _NOT_XML.sub("", "" if value is None else str(value))


def as_change(c: ChangeRow) -> Change:
    return Change(ChangeKind(c.kind), c.section, c.entity, c.field, c.old, c.new)


def _iso(value: str) -> str:
    at = datetime.fromisoformat(value)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def atom(
    title: str, feed_id: str, self_url: str, page_url: str, base_url: str, sets: Sequence[Sequence[ChangeRow]]
) -> bytes:
    """The feed document; ``base_url`` ends with "/"."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _sub(feed, "id", feed_id)
    _sub(feed, "title", title)
    newest = max((_iso(s[-1].detected_at) for s in sets if s), default="1970-01-01T00:00:00Z")
    _sub(feed, "updated", newest)
    _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=page_url)
    _sub(_sub(feed, "author"), "name", "policy-watch")
    _sub(feed, "generator", "policy-watch")
    for changes in sets:
        first = changes[0]
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"{feed_id.split(':feed')[0]}:snapshot:{first.snapshot_id}")
        _sub(entry, "title", f"{first.vendor}: {summary([as_change(c) for c in changes])}")
        _sub(entry, "updated", _iso(first.detected_at))
        link = f"{base_url}vendors/{first.vendor_id}"
        if first.previous_snapshot_id is not None:
            link += f"/diff?a={first.previous_snapshot_id}&b={first.snapshot_id}"
        _sub(entry, "link", rel="alternate", type="text/html", href=link)
        deadlines = sorted({c.deadline for c in changes if c.deadline})
        lines = [describe(as_change(c)) for c in changes]
        if deadlines:
            lines.append(f"Objection deadline: {', '.join(deadlines)}")
        _sub(entry, "content", "\n".join(lines), type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body
