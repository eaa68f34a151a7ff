"""Deliver alerts through apprise. The only module that imports apprise.

Each target gets the body in its native format: markdown for Slack and chat services (apprise
turns it into Slack ``mrkdwn``), HTML for email (apprise adds a plain-text part), plain text for
webhooks.

Each message is cut to what its target accepts (apprise's ``body_maxlen`` for the service; email
gets more) and then says where to read the rest. Its level becomes apprise's notify type, which a
webhook receiver sees as ``type``.

Target URLs hold secrets (tokens, passwords, often from ``${ENV}``). They are never logged or
returned: ``redact()`` gives the printable form, and error messages are scrubbed of every part
of the URL that the redacted form hides. A failed send says why, in apprise's own words (its
warnings and the exception text it logs at debug level), scrubbed the same way.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from apprise import NotifyBase

from policy_watch import render
from policy_watch.config import NotifyTarget

# apprise logs tokens and custom header values at DEBUG: keep it quiet whatever our level is, and
# keep its records out of the root handlers; send() reports a scrubbed reason instead.
for _name in ("apprise", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)
logging.getLogger("apprise").propagate = False

# Query keys shown in a redacted URL; every other query value (headers, tokens, payload) is dropped.
_SHOWN_QUERY = ("to", "from", "smtp", "mode", "format")
EMAIL_MAX_CHARS = 1_000_000  # apprise gives email no limit of its own; mail servers take a few MB
_TYPES = {
    render.INFO: apprise.NotifyType.INFO,
    render.SUCCESS: apprise.NotifyType.SUCCESS,
    render.WARNING: apprise.NotifyType.WARNING,
    render.FAILURE: apprise.NotifyType.FAILURE,
}
# apprise's debug lines that carry the cause of a failure (the exception text, the server's answer)
_CAUSE = re.compile(r"^(?:Socket Exception|Response Details|Exception)[^:]*:\s*(.+)", re.S)
_TOKENISH = re.compile(r"^(?=.*\d)[A-Za-z0-9_\-.~%+=]{8,}$|^[A-Za-z0-9_\-.~%+=]{20,}$")


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    error: str | None = None


def _plugin(url: str) -> NotifyBase | None:
    try:
        return apprise.Apprise.instantiate(url)
    except Exception:  # apprise raises many kinds; a URL it cannot read is just unusable
        return None


def _mask(segment: str) -> str:
    """A path segment that looks like a token: first and last character only, as apprise does."""
    if _TOKENISH.match(unquote(segment)):
        return f"{segment[0]}...{segment[-1]}"
    return segment


def _mask_any(segment: str) -> str:
    """A path segment of a URL apprise does not know: hidden whatever it looks like."""
    if not segment:
        return segment
    return f"{segment[0]}...{segment[-1]}" if len(segment) >= 8 else "..."


def redact(url: str) -> str:
    """A target URL fit to print: passwords, tokens, headers and token-like path parts hidden."""
    plugin = _plugin(url)
    shown = str(plugin.url(privacy=True)) if plugin is not None else url  # type: ignore[no-untyped-call]
    try:
        parts = urlsplit(shown)
        hostport = parts.netloc.rsplit("@", 1)[-1]
        has_password = parts.password is not None
    except ValueError:
        return f"{url.split('://', 1)[0] if '://' in url else '?'}://…"
    if plugin is None and "." not in hostport:
        hostport = _mask(hostport)
    user = ""
    if parts.username and plugin is not None:
        user = f"{_mask(parts.username)}:****@" if has_password else f"{_mask(parts.username)}@"
    elif parts.username or has_password:
        user = "****@"
    # A URL apprise does not know has no known layout: any part of its path may be a secret.
    path = "/".join(_mask(p) if plugin is not None else _mask_any(p) for p in parts.path.split("/"))
    query = "&".join(f"{k}={v}" for k, v in parse_qsl(parts.query) if k in _SHOWN_QUERY)
    return f"{parts.scheme}://{user}{hostport}{path}" + (f"?{query}" if query else "")


def secrets_of(url: str) -> set[str]:
    """Every piece of the URL that its redacted form does not show (and is long enough to find)."""
    shown = redact(url)
    pieces = set(re.split(r"[/:@?&=#,;]+", url)) | set(re.split(r"[/:@?&=#,;]+", unquote(url)))
    return {p for p in pieces if len(p) >= 4 and p not in shown}


def scrub(message: str, url: str) -> str:
    """Remove anything secret of ``url`` from a message."""
    for p in sorted(secrets_of(url) | {url}, key=len, reverse=True):
        message = message.replace(p, "…")
    return message[:500]


def _native(plugin: NotifyBase) -> object:
    native = getattr(plugin, "notify_format", apprise.NotifyFormat.TEXT)
    return native[0] if isinstance(native, tuple | list) else native


def _body_for(plugin: NotifyBase, msg: render.Message) -> tuple[str, str]:
    native = _native(plugin)
    if native == apprise.NotifyFormat.HTML:
        return msg.html, apprise.NotifyFormat.HTML
    if native == apprise.NotifyFormat.MARKDOWN:
        return msg.markdown, apprise.NotifyFormat.MARKDOWN
    return msg.text, apprise.NotifyFormat.TEXT


def body_limit(plugin: NotifyBase, title: str) -> int:
    """The most characters of body the target takes: the service's own limit as apprise knows it,
    less the title where the service puts both in one field; email a generous fixed size."""
    if _native(plugin) == apprise.NotifyFormat.HTML:
        return EMAIL_MAX_CHARS
    limit = int(getattr(plugin, "body_maxlen", 32768) or 32768)
    return max(500, limit - len(title) - 2)


def send(target: NotifyTarget, msg: render.Message, more: str = "run `policy-watch changes`") -> SendResult:
    """Send one message to one target; never raises, never reveals the URL's secrets.

    A body longer than the target takes is cut at a change; ``more`` says where to read the rest.
    """
    if target.unset:
        return SendResult(False, f"{target.name}: {target.unset_reason()}")
    plugin = _plugin(target.url)
    if plugin is None:
        return SendResult(False, f"{target.name}: apprise does not recognise the URL {redact(target.url)}")
    body, fmt = _body_for(plugin, msg)
    body = render.fit(body, body_limit(plugin, msg.title), more, is_html=fmt == apprise.NotifyFormat.HTML)
    a = apprise.Apprise()
    a.add(plugin)
    capture = _Capture()
    logger = logging.getLogger("apprise")
    level = logger.level
    logger.addHandler(capture)
    logger.setLevel(
        logging.DEBUG
    )  # the cause of a failure is only logged at debug level; nothing else listens
    try:
        ok = bool(
            a.notify(
                body=body,
                title=msg.title,
                body_format=fmt,
                notify_type=_TYPES.get(msg.level, apprise.NotifyType.INFO),
            )
        )
    except Exception as e:  # a failing plugin must not stop the run; the alert stays queued
        return SendResult(False, f"{target.name} ({redact(target.url)}): {type(e).__name__} while sending")
    finally:
        logger.setLevel(level)
        logger.removeHandler(capture)
    if ok:
        return SendResult(True)
    return SendResult(False, f"{target.name} ({redact(target.url)}): {scrub(capture.reason(), target.url)}")


class _Capture(logging.Handler):
    """What apprise logs while sending: its first warning or error, and the cause it logs at debug."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.first: str | None = None
        self.cause: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record apprise cannot format says nothing useful
            return
        if record.levelno >= logging.WARNING:
            if self.first is None:
                self.first = text.strip()
        elif self.cause is None and (m := _CAUSE.match(text.strip())):
            self.cause = " ".join(m.group(1).split())[:300]

    def reason(self) -> str:
        parts = [p for p in (self.first, self.cause) if p]
        return ": ".join(parts) if parts else "delivery failed"
