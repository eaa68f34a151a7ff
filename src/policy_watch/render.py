"""Alert text: one message rendered as Slack-safe markdown, escaped HTML and plain text. Pure.

Page text is untrusted. In markdown (Slack) it cannot form mentions (``<!channel>``,
``<@U123>``), links (``<url|text>``, ``[text](url)``) or markup; in HTML every value is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from policy_watch.models import Change, ChangeKind, ObjectionWindow, WindowRule

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MAX_VALUE = 500


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    markdown: str
    html: str
    text: str


def clean(value: str | None, limit: int = MAX_VALUE) -> str:
    """Drop control and bidi characters, collapse whitespace, cap the length."""
    text = " ".join(_CONTROL.sub("", value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_safe(value: str | None) -> str:
    """Page text for Slack: no mentions, links or markup can form."""
    text = clean(value)
    text = text.replace("&", "&amp;").replace("<", "‹").replace(">", "›")
    text = text.replace("@", "@\u200b").replace("!", "!\u200b")
    text = re.sub(r"([*_~`\[\]|#])", r"\\\1", text)
    return text


def _h(value: str | None) -> str:
    return html.escape(clean(value), quote=True)


def _summary(changes: Sequence[Change]) -> str:
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.kind.value] = counts.get(c.kind.value, 0) + 1
    order = ["added", "removed", "changed", "renamed", "column_added", "column_removed"]
    return ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in order if k in counts)


def _describe(c: Change, esc: type[_Esc]) -> str:
    e, s = esc.v(c.entity), esc.v(c.section)
    where = f" ({esc.em(s)})" if c.section else ""
    if c.kind is ChangeKind.ADDED:
        return f"{esc.b('Added')}: {e}{where}"
    if c.kind is ChangeKind.REMOVED:
        return f"{esc.b('Removed')}: {e}{where}"
    if c.kind is ChangeKind.RENAMED:
        return f"{esc.b('Renamed')}: {esc.v(c.old)} → {esc.v(c.new)}{where}"
    if c.kind is ChangeKind.COLUMN_ADDED:
        return f"{esc.b('Column added')}: {esc.v(c.field)}{where}"
    if c.kind is ChangeKind.COLUMN_REMOVED:
        return f"{esc.b('Column removed')}: {esc.v(c.field)}{where}"
    if not c.entity:
        return f"{esc.b('Section renamed')}: {esc.v(c.old)} → {esc.v(c.new)}"
    return f"{esc.b('Changed')} {esc.v(c.field)} of {e}{where}: {esc.v(c.old) or '(empty)'} → {esc.v(c.new) or '(empty)'}"


class _Esc:
    @staticmethod
    def v(s: str | None) -> str:
        return clean(s)

    @staticmethod
    def b(s: str) -> str:
        return s

    @staticmethod
    def em(s: str) -> str:
        return s


class _Md(_Esc):
    @staticmethod
    def v(s: str | None) -> str:
        return slack_safe(s)

    @staticmethod
    def b(s: str) -> str:
        return f"*{s}*"

    @staticmethod
    def em(s: str) -> str:
        return f"_{s}_"


class _Html(_Esc):
    @staticmethod
    def v(s: str | None) -> str:
        return _h(s)

    @staticmethod
    def b(s: str) -> str:
        return f"<b>{s}</b>"

    @staticmethod
    def em(s: str) -> str:
        return f"<i>{s}</i>"


def window_line(window: ObjectionWindow, today: date) -> str:
    left = window.days_left(today)
    rule = "the page's declared update date" if window.rule is WindowRule.DECLARED else "the detection date"
    if left < 0:
        return (
            f"DEADLINE ALREADY PASSED: the objection window opened {window.opens} ({rule}) and closed "
            f"{window.deadline}, {-left} days ago."
        )
    return f"Object by {window.deadline} ({left} days left; window opened {window.opens}, {rule})."


def change_message(
    vendor: str, url: str, changes: Sequence[Change], window: ObjectionWindow | None, today: date
) -> Message:
    late = window is not None and window.days_left(today) < 0
    title = f"{clean(vendor, 100)}: {_summary(changes)}"
    if window:
        title += f" — {'DEADLINE PASSED ' if late else 'object by '}{window.deadline}"
    deadline = window_line(window, today) if window else "No objection window opened by these changes."
    md = [f"*{slack_safe(vendor)}* changed its subprocessor list: {_summary(changes)}.", f"Page: {url}", ""]
    md += [f"• {_describe(c, _Md)}" for c in changes]
    md += ["", f"*{deadline}*" if late else deadline]
    txt = [f"{clean(vendor)} changed its subprocessor list: {_summary(changes)}.", f"Page: {url}", ""]
    txt += [f"- {_describe(c, _Esc)}" for c in changes]
    txt += ["", deadline]
    items = "".join(f"<li>{_describe(c, _Html)}</li>" for c in changes)
    warn = ' style="color:#b00020;font-weight:bold"' if late else ""
    body = (
        f"<p><b>{_h(vendor)}</b> changed its subprocessor list: {_summary(changes)}.</p>"
        f'<p>Page: <a href="{html.escape(url, quote=True)}">{_h(url)}</a></p><ul>{items}</ul>'
        f"<p{warn}>{html.escape(deadline)}</p>"
    )
    return Message(title=title, markdown="\n".join(md), html=body, text="\n".join(txt))


def notice_message(title: str, lines: Sequence[str]) -> Message:
    """Operator notices (failures, recoveries, structure alarms, reminders): untrusted parts pre-cleaned."""
    md = "\n".join(slack_safe(line) if line else "" for line in lines)
    txt = "\n".join(clean(line) for line in lines)
    body = "".join(f"<p>{_h(line)}</p>" for line in lines if line)
    return Message(title=clean(title, 200), markdown=md, html=body, text=txt)


def digest_message(messages: Sequence[Message]) -> Message:
    title = f"policy-watch: {len(messages)} alert{'s' if len(messages) != 1 else ''}"
    if len(messages) == 1:
        title = messages[0].title
    sep = "\n\n———\n\n"
    return Message(
        title=title,
        markdown=sep.join(f"*{slack_safe(m.title)}*\n{m.markdown}" for m in messages),
        html="<hr>".join(f"<h3>{html.escape(m.title)}</h3>{m.html}" for m in messages),
        text=sep.join(f"{m.title}\n{m.text}" for m in messages),
    )
