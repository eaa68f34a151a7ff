"""Alert text: one message rendered as Slack-safe markdown, escaped HTML and plain text. Pure.

Page text is untrusted. In markdown (sent to Slack, which apprise converts to Slack ``mrkdwn``)
it cannot form mentions (``<!channel>``, ``<!here>``, ``<@U123>``), links (``<url|text>``,
``[text](url)``) or emphasis; in HTML every value is escaped; in plain text angle brackets
become look-alikes, so a webhook receiver that forwards the text cannot be made to mention or
inject markup either, and ``@`` cannot start a mention (``@here``, ``@channel``, ``@everyone``) in
any of them. Control, zero-width and bidi characters are dropped everywhere.

A message longer than a target accepts is cut at a change boundary (``fit``) and says how many
changes it leaves out and where to read them: every change stays in the database.

``for_terminal`` is the one place that makes text safe for a terminal (and for a spreadsheet
cell): control characters and bidi overrides become visible escapes such as ``\\x1b``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from policy_watch import clock
from policy_watch.config import DEFAULT_WINDOW_KINDS
from policy_watch.meaning.transfers import TransferMeaning, TransferRules, sentence
from policy_watch.models import Change, ChangeKind, ObjectionWindow, WindowRule

if TYPE_CHECKING:
    from policy_watch.policy import Suspicion

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
MAX_VALUE = 500
REPEAT_MARK = "[possible repeat]"
BULLET_MD, BULLET_TEXT = "• ", "- "  # one change (or notice item) per line
_REPEAT_NOTE = "This alert may be a repeat: policy-watch stopped while sending it earlier, so it may have arrived already."
_KIND_ORDER = ["added", "removed", "changed", "renamed", "column_added", "column_removed"]
# Terminal-unsafe characters: C0 controls but newline and tab, DEL, C1 controls, bidi marks,
# embeddings, overrides and isolates (which reorder what a reader sees).
_TERMINAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")
# The level of a message, as apprise's NotifyType names it: a webhook receiver sees it as "type".
INFO, SUCCESS, WARNING, FAILURE = "info", "success", "warning", "failure"


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    markdown: str
    html: str
    text: str
    level: str = INFO  # info, success, warning (a deadline passed), failure (an operator alarm)


def for_terminal(value: str) -> str:
    """Text fit for a terminal: control characters (but newline and tab), DEL, C1 controls and
    bidi controls become visible escapes (``\\x1b``, ``\\u202e``), so page text can neither
    drive the terminal (clear it, retitle it, write the clipboard) nor reorder what is shown."""

    def visible(m: re.Match[str]) -> str:
        ch = m.group()
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    return _TERMINAL.sub(visible, value)


def json_for_terminal(text: str) -> str:
    """JSON text whose values stay exact but whose DEL, C1 and bidi controls are ``\\u`` escapes
    (``json.dumps`` escapes the C0 controls itself)."""
    return _TERMINAL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def csv_cell(value: str) -> str:
    """A spreadsheet cell that is inert: a value that could start a formula (``=``, ``+``, ``-``,
    ``@``, tab, carriage return) gets a leading ``'`` (OWASP, CSV injection); controls are escaped."""
    prefix = "'" if value.startswith(_CSV_FORMULA) else ""
    return prefix + for_terminal(value)


def clean(value: str | None, limit: int = MAX_VALUE) -> str:
    """Drop control, zero-width and bidi characters, collapse whitespace, cap the length."""
    text = " ".join(_CONTROL.sub("", value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _no_mention(text: str) -> str:
    """A zero-width joiner after every ``@`` that precedes a name: ``@here``, ``@channel``,
    ``@everyone`` and ``@user`` stay readable but no chat service (Mattermost, Discord, Teams)
    reads them as a mention, and apprise's Discord plugin finds no ping to enable."""
    return re.sub(r"@(?=\w)", "@\u200d", text)


def text_safe(value: str | None, limit: int = MAX_VALUE) -> str:
    """Page text for plain-text targets: cleaned, and no ``<`` or ``>`` left to form a mention or a tag
    in whatever the receiver forwards it to (a webhook that posts to chat, a page that shows it), and
    no ``@name`` left to mention anyone."""
    return _no_mention(clean(value, limit).replace("<", "‹").replace(">", "›"))


def slack_safe(value: str | None, limit: int = MAX_VALUE) -> str:
    """Page text for Slack: no mention, link or emphasis can form, whatever Slack or apprise do to it.

    Angle brackets become look-alike characters, so no ``<!channel>``, ``<@U…>`` or ``<url|text>``
    can exist, even after apprise's legacy conversion turns ``!channel>`` back into ``<!channel>``.
    A zero-width space after ``@`` and ``!`` breaks ``@here`` and ``!channel``. Markdown link and
    emphasis characters are backslash-escaped (apprise turns ``\\[`` into a plain ``[``). Slack has
    no escape for ``_``, ``~`` and backticks (apprise passes them through, and Slack would format
    ``_x_``, ``~x~`` and code), so they become look-alikes. ``&`` is left alone: apprise escapes it
    for Slack itself.
    """
    text = clean(value, limit)
    text = re.sub(r"([\\*\[\]])", r"\\\1", text)
    text = text.translate(_SLACK_LOOKALIKES)
    text = text.replace("<", "‹").replace(">", "›")
    text = text.replace("@", "@\u200b").replace("!", "!\u200b")
    return "\\" + text if text.startswith("#") else text


_SLACK_LOOKALIKES = str.maketrans({"_": "ˍ", "~": "∼", "`": "ˋ"})


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
    note = f" — {esc.em(esc.v(c.note))}" if c.note else ""  # what differs between look-alike names
    if c.kind is ChangeKind.ADDED:
        return f"{esc.b('Added')}: {e}{where}{note}"
    if c.kind is ChangeKind.REMOVED:
        return f"{esc.b('Removed')}: {e}{where}{note}"
    if c.kind is ChangeKind.RENAMED:
        return f"{esc.b('Renamed')}: {esc.v(c.old)} → {esc.v(c.new)}{where}"
    if c.kind is ChangeKind.COLUMN_ADDED:
        return f"{esc.b('Column added')}: {esc.v(c.field)}{where}"
    if c.kind is ChangeKind.COLUMN_REMOVED:
        return f"{esc.b('Column removed')}: {esc.v(c.field)}{where}"
    if not c.entity:
        old_name, new_name = esc.v(c.old) or "(no heading)", esc.v(c.new) or "(no heading)"
        return f"{esc.b('Section renamed')}: {old_name} → {new_name}"
    old, new = esc.v(c.old) or "(empty)", esc.v(c.new) or "(empty)"
    return f"{esc.b('Changed')} {esc.v(c.field)} of {e}{where}: {old} → {new}"


def rule_text(rule: WindowRule) -> str:
    if rule is WindowRule.DECLARED:
        return "the update date the page declares"
    return "the date policy-watch detected the change"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 vendor``, ``2 vendors``; ``1 entry``, ``2 entries`` (given the plural)."""
    return f"{n} {noun if n in (1, -1) else plural or noun + 's'}"


def days_text(n: int) -> str:
    return counted(n, "day")


def window_line(window: ObjectionWindow, today: date, declared: date | None = None) -> str:
    """The deadline sentence; ``today`` is the detection date."""
    left = window.days_left(today)
    why = f"{window.opens}, {rule_text(window.rule)}"
    if window.rule is WindowRule.DETECTED and declared is not None:
        why += f"; the page's own date, {declared}, did not move forward or lies in the future"
    if left < 0:
        return (
            f"DEADLINE ALREADY PASSED: the objection window opened {why}, and closed on {window.deadline}, "
            f"{days_text(-left)} before this change was detected on {today}. Act now if you still can."
        )
    return f"Object by {window.deadline} ({days_text(left)} left). The window opened {why}; detected {today}."


def _window_heading(window: ObjectionWindow, today: date) -> str:
    left = window.days_left(today)
    tail = f"{days_text(left)} left" if left >= 0 else f"deadline passed {days_text(-left)} ago"
    return f"Changes that open the objection window (deadline {window.deadline} · {tail})"


_OPENING_ORDER = {ChangeKind.ADDED: 0, ChangeKind.RENAMED: 1}


_Meant = tuple[Change, "TransferMeaning | None"]


def _groups(
    per: Sequence[_Meant], window: ObjectionWindow | None, kinds: Iterable[str], today: date
) -> list[tuple[str | None, list[_Meant]]]:
    """The changes under headings: those that open the window first, then the others (removals last)."""
    if window is None:
        return [(None, list(per))]

    def opens(cm: _Meant) -> bool:
        return clock.opens_window(cm[0], kinds, cm[1] is not None and cm[1].carries_risk)

    opening = [cm for cm in per if opens(cm)]
    opening.sort(key=lambda cm: _OPENING_ORDER.get(cm[0].kind, len(_OPENING_ORDER)))  # stable
    rest = [cm for cm in per if not opens(cm)]
    rest.sort(key=lambda cm: cm[0].kind is ChangeKind.REMOVED)  # stable: the diff's order otherwise
    groups: list[tuple[str | None, list[_Meant]]] = [(_window_heading(window, today), opening)]
    if rest:
        groups.append(("Other changes (they open no objection window)", rest))
    return groups


def transfer_lines(
    changes: Sequence[Change], meanings: Sequence[TransferMeaning | None], rules: TransferRules | None
) -> list[str]:
    """What each change means for transfers, in words, risks first (page text inside: escape it)."""
    if rules is None:
        return []
    said = [
        (m.carries_risk, sentence(c.entity, m, rules)) for c, m in zip(changes, meanings, strict=False) if m
    ]
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

    What opens the objection window comes first, under one heading that gives the deadline; the
    other changes (removals last) follow under their own heading. ``meanings`` (parallel to
    ``changes``) say where each change sends data: the alert says that first, in words, and a
    change carrying a transfer risk opens a window under the kind "transfer".
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
    decide = (
        f"Record a decision: policy-watch ack|object|accept {window_id} (see policy-watch deadlines)."
        if window_id is not None
        else "See open windows with: policy-watch deadlines"
    )
    groups = _groups(list(zip(changes, meant, strict=True)), window, kinds, today)

    md = [
        f"**{slack_safe(vendor)}** changed its subprocessor list: {counts}.",
        f"Page: {url}",
        f"**{deadline}**" if window else deadline,
    ]
    if said:
        md[:0] = ["**Transfers:**", *[f"{BULLET_MD}{slack_safe(line)}" for line in said], ""]
    if late:
        md.insert(0, "🚨 **DEADLINE ALREADY PASSED** 🚨")
    txt = [f"{text_safe(vendor)} changed its subprocessor list: {counts}.", f"Page: {url}", deadline]
    if said:
        txt[:0] = ["Transfers:", *[f"{BULLET_TEXT}{text_safe(line)}" for line in said], ""]
    if late:
        txt.insert(0, "!!! DEADLINE ALREADY PASSED !!!")
    style = "color:#b00020;font-weight:bold;font-size:1.2em" if late else "font-weight:bold"
    body = (
        (f'<p style="{style}">DEADLINE ALREADY PASSED</p>' if late else "")
        + (
            "<p><b>Transfers:</b></p><ul>" + "".join(f"<li>{_h(line)}</li>" for line in said) + "</ul>"
            if said
            else ""
        )
        + f"<p><b>{_h(vendor)}</b> changed its subprocessor list: {html.escape(counts)}.</p>"
        + f'<p>Page: <a href="{html.escape(url, quote=True)}">{_h(url)}</a></p>'
        + f'<p style="{style}">{html.escape(deadline)}</p>'
    )
    for heading, group in groups:
        md += ["", f"**{heading}:**"] if heading else [""]
        md += [f"{BULLET_MD}{describe(c, _Md)}" for c, _ in group]
        txt += ["", f"{heading}:"] if heading else [""]
        txt += [f"{BULLET_TEXT}{describe(c)}" for c, _ in group]
        body += f"<p><b>{html.escape(heading)}:</b></p>" if heading else ""
        body += "<ul>" + "".join(f"<li>{describe(c, _Html)}</li>" for c, _ in group) + "</ul>"
    md += ["", decide]
    txt += ["", decide]
    body += f"<p>{html.escape(decide)}</p>"
    return Message(
        title=title, markdown="\n".join(md), html=body, text="\n".join(txt), level=WARNING if late else INFO
    )


def notice_message(title: str, lines: Sequence[str], level: str = INFO) -> Message:
    """Operator notices (failures, recoveries, structure alarms, reminders); every line is treated as
    untrusted. A line starting with ``BULLET_TEXT`` is one item of a list (``fit`` counts them)."""
    md = "\n".join(_md_notice_line(line) for line in lines)
    txt = "\n".join(
        text_safe(line) if not line.startswith(BULLET_TEXT) else BULLET_TEXT + text_safe(line[2:])
        for line in lines
    )
    body = "".join(
        f"<li>{_h(line[2:])}</li>" if line.startswith(BULLET_TEXT) else f"<p>{_h(line)}</p>"
        for line in lines
        if line
    )
    body = re.sub(r"((?:<li>.*?</li>)+)", r"<ul>\1</ul>", body)
    return Message(title=clean(title, 200), markdown=md, html=body, text=txt, level=level)


def _md_notice_line(line: str) -> str:
    if line.startswith(BULLET_TEXT):
        return BULLET_MD + slack_safe(line[2:])
    return slack_safe(line) if line else ""


def digest_message(messages: Sequence[Message], vendors: Sequence[str] = ()) -> Message:
    """Several alerts for one target as one message. Its title stays short: the count and the first
    vendors' names in alphabetical order (alerts arrive in the order vendors finish); each alert's
    own title heads its part of the body."""
    if len(messages) == 1:
        return messages[0]
    names = sorted((clean(v, 30) for v in dict.fromkeys(vendors) if v and v != "*"), key=str.casefold)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    title = f"policy-watch: {len(messages)} alerts" + (f" — {shown}" if shown else "")
    sep = "\n\n———\n\n"
    rank = [INFO, SUCCESS, WARNING, FAILURE]
    return Message(
        title=clean(title, 160),
        level=max((m.level for m in messages), key=lambda lv: rank.index(lv) if lv in rank else 0),
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
        level=msg.level,
    )


def fit(body: str, limit: int, more: str, *, is_html: bool = False) -> str:
    """``body`` cut to at most ``limit`` characters at the end of a change (a list item), followed by
    how many changes were left out and ``more``, the place to read them all. A body that fits is
    returned as it is."""
    if len(body) <= limit:
        return body
    reserve = len(html.escape(_left_out(body.count("\n") + body.count("<li>"), more))) + 16  # the note
    if is_html:
        note = "<p>{}</p>"
        cut = body.rfind("</li>", 0, max(0, limit - reserve))
        end = cut + len("</li>") if cut >= 0 else 0
        kept = body[:end] + "</ul>" if end else ""
        return kept + note.format(html.escape(_left_out(body.count("<li>", end), more)))
    lines = body.split("\n")
    kept_lines: list[str] = []
    size = 0
    budget = max(0, limit - reserve)
    for line in lines:
        if size + len(line) + 1 > budget:
            break
        kept_lines.append(line)
        size += len(line) + 1
    rest = lines[len(kept_lines) :]
    left_out = sum(line.startswith((BULLET_MD, BULLET_TEXT)) for line in rest)
    return "\n".join([*kept_lines, "", _left_out(left_out, more)])


def _left_out(n: int, more: str) -> str:
    what = f"{n:,} more change{'' if n == 1 else 's'}" if n else "The rest of this message"
    return (
        f"… {what} not shown here: this message is too long for the target. Every change is on record: {more}"
    )


# --- what a run tells about one vendor: its result's error or notice, the structure alarm ---------


def held_reason(why: Suspicion) -> str:
    """Why a reading is held as suspect, in a few words."""
    if why.unreadable is not None:
        return why.unreadable
    return f"{why.lost} of {why.of} entities disappeared at once"


def held_error(vendor: str, why: Suspicion) -> str:
    return f"{vendor}: page structure changed ({held_reason(why)}); last good snapshot kept as baseline"


def still_held(vendor: str) -> str:
    why = "page structure still changed since the last good snapshot; run `policy-watch accept` if it is real"
    return f"{vendor}: {why}"


def structure_alarm(vendor: str, url: str, why: Suspicion, entries: int) -> Message:
    """The operators' alarm when a vendor's page stops reading like its last good version."""
    return notice_message(
        f"{vendor}: page structure changed — check it",
        [
            f"The subprocessor page of {vendor} no longer reads like the last good version: {held_reason(why)}.",
            f"Page: {url}",
            f"Found: {entries} entries.",
            "No entity changes are reported until the page comes back or someone runs "
            f'`policy-watch accept "{vendor}"` to accept the new content as real.',
            "The last good snapshot stays the baseline.",
        ],
    )


def not_recorded(vendor: str) -> str:
    why = "not recorded: a database error undid this part of the run; it is checked again next run"
    return f"{vendor}: {why}"


def body_without_snapshot(vendor: str) -> str:
    why = "no snapshot matches the stored page; it will be read again on the next run"
    return f"{vendor}: {why}"


def reread_kept(vendor: str, recorded: int, read: int, why: Suspicion) -> str:
    """A page read again with today's parser and rules gave a reading the guard refuses
    (``read`` entries against the ``recorded`` baseline's)."""
    kept = f"{vendor}: the recorded list ({recorded} entries) stays the baseline"
    if why.unreadable is not None:
        return f"{kept}: the current parse rules cannot read the page it came from ({why.unreadable})"
    return f"{kept}: the current parse rules read only {read} entries from the page it came from"


def reread_taken(vendor: str, entries: int, recorded: int) -> str:
    """A page read again with today's parser and rules: the new reading is the baseline."""
    return (
        f"{vendor}: page read again with changed parse rules or parser: {entries} entries "
        f"(recorded: {recorded}); this reading is the new baseline, and no change is "
        "alerted for it since the page itself did not change"
    )
