"""Jinja2 for the review page: autoescaped templates, and filters that keep page text inert."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

# C0 controls (but tab and newline), DEL and C1 controls: never shown, never sent to a browser.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
CELL_LIMIT = 300


def untrusted(value: object, limit: int = CELL_LIMIT) -> Markup:
    """Page text as HTML: escaped, cut to ``limit`` characters (saying how long it was), and in a
    ``<bdi>`` so that bidi marks inside cannot reorder what follows it on the page."""
    if value is None or value == "":
        return Markup("")
    text = _CONTROL.sub("", str(value))
    if len(text) > limit:
        return Markup(
            '<bdi title="{n} characters">{text}…</bdi> <small class="cut">({n} characters)</small>'
        ).format(text=text[:limit], n=f"{len(text):,}")
    return Markup("<bdi>{}</bdi>").format(text)


def when(value: object) -> str:
    """An ISO time as "2026-12-02 07:00 UTC"; a date stays a date."""
    if not value:
        return "—"
    text = str(value)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return _CONTROL.sub("", text)
    if len(text) <= 10:
        return at.date().isoformat()
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M") + " UTC"


def day(value: object) -> str:
    return when(value)[:10] if value else "—"


def days_left(deadline: object, today: date) -> int:
    return (date.fromisoformat(str(deadline)[:10]) - today).days


def query(base: str, **params: Any) -> str:
    """A link with its query string (empty values left out)."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return base + ("?" + urlencode(kept) if kept else "")


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("policy_watch.web", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(t=untrusted, when=when, day=day)
    env.globals.update(query=query, days_left=days_left)
    return env
