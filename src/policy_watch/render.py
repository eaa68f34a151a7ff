"""Alert text: one message rendered as Slack-safe markdown, escaped HTML and plain text. Pure.

Page text is untrusted. In markdown (sent to Slack, which apprise converts to Slack ``mrkdwn``)
it cannot form mentions (``<!channel>``, ``<!here>``, ``<@U123>``), links (``<url|text>``,
``[text](url)``) or emphasis; in HTML every value is escaped; in plain text angle brackets
become look-alikes, so a webhook receiver that forwards the text cannot be made to mention or
inject markup either. Control, zero-width and bidi characters are dropped everywhere.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from policy_watch import clock
from policy_watch.config import DEFAULT_WINDOW_KINDS
from policy_watch.meaning.transfers import TransferMeaning, TransferRules, sentence
from policy_watch.models import Change, ChangeKind, ObjectionWindow, WindowRule

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
MAX_VALUE = 500
REPEAT_MARK = "[possible repeat]"
_REPEAT_NOTE = "This alert may be a repeat: policy-watch stopped while sending it earlier, so it may have arrived already."
_KIND_ORDER = ["added", "removed", "changed", "renamed", "column_added", "column_removed"]


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    markdown: str
    html: str
    text: str


def clean(value: str | None, limit: int = MAX_VALUE) -> str:
    """Drop control, zero-width and bidi characters, collapse whitespace, cap the length."""
    text = " ".join(_CONTROL.sub("", value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_safe(value: str | None, limit: int = MAX_VALUE) -> str:
    """Page text for plain-text targets: cleaned, and no ``<`` or ``>`` left to form a mention or a tag
    in whatever the receiver forwards it to (a webhook that posts to chat, a page that shows it)."""
    return clean(value, limit).replace("<", "‹").replace(">", "›")


def slack_safe(value: str | None, limit: int = MAX_VALUE) -> str:
    """Page text for Slack: no mention, link or emphasis can form, whatever Slack or apprise do to it.

    Angle brackets become look-alike characters, so no ``<!channel>``, ``<@U…>`` or ``<url|text>``
    can exist, even after apprise's legacy conversion turns ``!channel>`` back into ``<!channel>``.
    A zero-width space after ``@`` and ``!`` breaks ``@here`` and ``!channel``. Markdown link and
    emphasis characters are backslash-escaped (apprise turns ``\\[`` into a plain ``[``). ``&`` is
    left alone: apprise escapes it for Slack itself.
    """
    text = clean(value, limit)
    text = re.sub(r"([\\*\[\]])", r"\\\1", text)
    text = text.replace("<", "‹").replace(">", "›")
    text = text.replace("@", "@\u200b").replace("!", "!\u200b")
    return "\\" + text if text.startswith("#") else text


def _h(value: str | None, limit: int = MAX_VALUE) -> str:
    return html.escape(clean(value, limit), quote=True)


def summary(changes: Sequence[Change]) -> str:
    """``1 added, 1 removed, 2 changed``."""
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.kind.value] = counts.get(c.kind.value, 0) + 1
    return ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in _KIND_ORDER if k in counts)


class _Plain:
    """How one format writes values and emphasis; the base writes plain text."""

    @staticmethod
    def v(s: str | None) -> str:
        return text_safe(s)

    @staticmethod
    def b(s: str) -> str:
        return s

    @staticmethod
    def em(s: str) -> str:
        return s


class _Md(_Plain):
    @staticmethod
    def v(s: str | None) -> str:
        return slack_safe(s)

    @staticmethod
    def b(s: str) -> str:
        return f"**{s}**"

    @staticmethod
    def em(s: str) -> str:
        return f"_{s}_"


class _Html(_Plain):
    @staticmethod
    def v(s: str | None) -> str:
        return _h(s)

    @staticmethod
    def b(s: str) -> str:
        return f"<b>{s}</b>"

    @staticmethod
    def em(s: str) -> str:
        return f"<i>{s}</i>"


def describe(c: Change, esc: type[_Plain] = _Plain) -> str:
    """One change: what, which entity, which section, old → new."""
    e = esc.v(c.entity)
    where = f" ({esc.em('section')} {esc.v(c.section)})" if c.section else ""
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
    old, new = esc.v(c.old) or "(empty)", esc.v(c.new) or "(empty)"
    return f"{esc.b('Changed')} {esc.v(c.field)} of {e}{where}: {old} → {new}"


def rule_text(rule: WindowRule) -> str:
    if rule is WindowRule.DECLARED:
        return "the update date the page declares"
    return "the date policy-watch detected the change"


def days_text(n: int) -> str:
    return f"{n} day{'' if n in (1, -1) else 's'}"


def window_line(window: ObjectionWindow, today: date, declared: date | None = None) -> str:
    """The deadline sentence; ``today`` is the detection date."""
    left = window.days_left(today)
    why = f"{window.opens}, {rule_text(window.rule)}"
    if window.rule is WindowRule.DETECTED and declared is not None:
        why += f"; the page's own date, {declared}, did not move forward or lies in the future"
    if left < 0:
        return (f"DEADLINE ALREADY PASSED: the objection window opened {why}, and closed on {window.deadline}, "
                f"{days_text(-left)} before this change was detected on {today}. Act now if you still can.")  # fmt: skip
    return f"Object by {window.deadline} ({days_text(left)} left). The window opened {why}; detected {today}."


def _change_window(
    c: Change, window: ObjectionWindow | None, kinds: Iterable[str], today: date, m: TransferMeaning | None = None
) -> str:
    where = _where(m)
    if window is None or not clock.opens_window(c, kinds, m is not None and m.carries_risk):
        return "opens no objection window" + where
    left = window.days_left(today)
    tail = f"{days_text(left)} left" if left >= 0 else f"deadline passed {days_text(-left)} ago"
    return f"opens {window.opens} · deadline {window.deadline} · {tail}" + where


def _where(m: TransferMeaning | None) -> str:
    """`` · countries US, IN · transfer risk US: ...; IN: no adequacy decision`` (page text: escape it)."""
    if m is None:
        return ""
    risk = "; ".join(r.text() for r in m.risks) or "none"
    return f" · countries {', '.join(m.countries) or 'none read'} · transfer risk {risk}"


def transfer_lines(
    changes: Sequence[Change], meanings: Sequence[TransferMeaning | None], rules: TransferRules | None
) -> list[str]:
    """What each change means for transfers, in words, risks first (page text inside: escape it)."""
    if rules is None:
        return []
    said = [(m.carries_risk, sentence(c.entity, m, rules)) for c, m in zip(changes, meanings, strict=False) if m]
    return [text for _, text in sorted(said, key=lambda pair: not pair[0])]


def change_message(
    vendor: str,
    url: str,
    changes: Sequence[Change],
    window: ObjectionWindow | None,
    today: date,
    *,
    window_kinds: Iterable[str] = DEFAULT_WINDOW_KINDS,
    declared: date | None = None,
    window_id: int | None = None,
    meanings: Sequence[TransferMeaning | None] = (),
    transfer_rules: TransferRules | None = None,
) -> Message:
    """The alert for one vendor's changes; ``today`` is the detection date.

    ``meanings`` (parallel to ``changes``) say where each change sends data: the alert says that
    first, in words, and a change carrying a transfer risk opens a window under the kind "transfer".
    """
    kinds = tuple(window_kinds)
    meant = [*meanings, *[None] * (len(changes) - len(meanings))]
    said = transfer_lines(changes, meant, transfer_rules)
    late = window is not None and window.days_left(today) < 0
    counts = summary(changes)
    title = f"{clean(vendor, 100)}: {counts}"
    if window:
        title += f" — {'DEADLINE PASSED ' if late else 'object by '}{window.deadline}"
    deadline = window_line(window, today, declared) if window else "These changes open no objection window."
    decide = (f"Record a decision: policy-watch ack|object|accept {window_id} (see policy-watch deadlines)."
              if window_id is not None else "See open windows with: policy-watch deadlines")  # fmt: skip
    per = [(c, _change_window(c, window, kinds, today, m)) for c, m in zip(changes, meant, strict=True)]

    md = [f"**{slack_safe(vendor)}** changed its subprocessor list: {counts}.", f"Page: {url}",
          f"**{deadline}**" if window else deadline, ""]  # fmt: skip
    if said:
        md[:0] = ["**Transfers:**", *[f"• {slack_safe(line)}" for line in said], ""]
    if late:
        md.insert(0, "🚨 **DEADLINE ALREADY PASSED** 🚨")
    md += [f"• {describe(c, _Md)}\n    _{slack_safe(w)}_" for c, w in per]
    md += ["", decide]

    txt = [f"{text_safe(vendor)} changed its subprocessor list: {counts}.", f"Page: {url}", deadline, ""]
    if said:
        txt[:0] = ["Transfers:", *[f"- {text_safe(line)}" for line in said], ""]
    if late:
        txt.insert(0, "!!! DEADLINE ALREADY PASSED !!!")
    txt += [f"- {describe(c)}\n    {text_safe(w)}" for c, w in per]
    txt += ["", decide]

    items = "".join(f"<li>{describe(c, _Html)}<br><small>{_h(w)}</small></li>" for c, w in per)
    style = "color:#b00020;font-weight:bold;font-size:1.2em" if late else "font-weight:bold"
    body = (
        (f'<p style="{style}">DEADLINE ALREADY PASSED</p>' if late else "")
        + ("<p><b>Transfers:</b></p><ul>" + "".join(f"<li>{_h(line)}</li>" for line in said) + "</ul>" if said else "")
        + f"<p><b>{_h(vendor)}</b> changed its subprocessor list: {html.escape(counts)}.</p>"
        + f'<p>Page: <a href="{html.escape(url, quote=True)}">{_h(url)}</a></p>'
        + f'<p style="{style}">{html.escape(deadline)}</p>'
        + f"<ul>{items}</ul><p>{html.escape(decide)}</p>"
    )
    return Message(title=title, markdown="\n".join(md), html=body, text="\n".join(txt))


def notice_message(title: str, lines: Sequence[str]) -> Message:
    """Operator notices (failures, recoveries, structure alarms, reminders); every line is treated as untrusted."""
    md = "\n".join(slack_safe(line) if line else "" for line in lines)
    txt = "\n".join(text_safe(line) for line in lines)
    body = "".join(f"<p>{_h(line)}</p>" for line in lines if line)
    return Message(title=clean(title, 200), markdown=md, html=body, text=txt)


def digest_message(messages: Sequence[Message]) -> Message:
    """Several alerts for one target as one message."""
    if len(messages) == 1:
        return messages[0]
    title = f"policy-watch: {len(messages)} alerts — " + "; ".join(clean(m.title, 200) for m in messages)
    sep = "\n\n———\n\n"
    return Message(
        title=clean(title, 250),
        markdown=sep.join(f"**{slack_safe(m.title)}**\n{m.markdown}" for m in messages),
        html="<hr>".join(f"<h3>{_h(m.title)}</h3>{m.html}" for m in messages),
        text=sep.join(f"{m.title}\n{m.text}" for m in messages),
    )


def possible_repeat(msg: Message) -> Message:
    """The same alert, marked as one that may already have been delivered. Idempotent."""
    if msg.title.startswith(REPEAT_MARK):
        return msg
    return Message(
        title=f"{REPEAT_MARK} {msg.title}",
        markdown=f"_{_REPEAT_NOTE}_\n\n{msg.markdown}",
        html=f"<p><i>{html.escape(_REPEAT_NOTE)}</i></p>{msg.html}",
        text=f"{REPEAT_MARK} {_REPEAT_NOTE}\n\n{msg.text}",
    )
