"""Deliver alerts through apprise. The only module that imports apprise.

Each target gets the body in its native format: markdown for Slack and chat services,
HTML (with a plain-text part) for email, plain text for webhooks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import apprise

from policy_watch.config import NotifyTarget

# apprise logs tokens and custom header values at DEBUG: keep it quiet whatever our level is.
for _name in ("apprise", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    error: str | None = None


def redact(url: str) -> str:
    """A target URL fit to print: tokens and passwords hidden."""
    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # noqa: BLE001 - apprise raises many kinds; a URL we cannot read is just hidden
        plugin = None
    if not plugin:
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        return f"{scheme}://…"
    return str(plugin.url(privacy=True))


def check_target(url: str) -> str | None:
    """None when apprise understands the URL, else a message without the URL itself."""
    if apprise.Apprise.instantiate(url) is None:
        return "apprise does not recognise this notification URL"
    return None


def send(target: NotifyTarget, title: str, markdown: str, html: str, text: str, timeout: float = 30.0) -> SendResult:
    plugin = apprise.Apprise.instantiate(target.url)
    if plugin is None:
        return SendResult(False, f"{target.name}: apprise does not recognise the URL {redact(target.url)}")
    native = plugin.notify_format
    native = native[0] if isinstance(native, tuple | list) else native
    if native == apprise.NotifyFormat.HTML:
        body, fmt = html, apprise.NotifyFormat.HTML
    elif native == apprise.NotifyFormat.MARKDOWN:
        body, fmt = markdown, apprise.NotifyFormat.MARKDOWN
    else:
        body, fmt = text, apprise.NotifyFormat.TEXT
    a = apprise.Apprise()
    a.add(plugin)
    capture = _Capture()
    logger = logging.getLogger("apprise")
    logger.addHandler(capture)
    try:
        ok = bool(a.notify(body=body, title=title, body_format=fmt))
    except Exception as e:  # noqa: BLE001 - a failing plugin must not stop the run; the alert stays queued
        return SendResult(False, f"{target.name}: {type(e).__name__} while sending")
    finally:
        logger.removeHandler(capture)
    if ok:
        return SendResult(True)
    reason = capture.last or "delivery failed"
    return SendResult(False, f"{target.name} ({redact(target.url)}): {_scrub(reason, target.url)}")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


def _scrub(message: str, url: str) -> str:
    """Remove anything of the secret URL from an error message."""
    parts = {url}
    rest = url.split("://", 1)[-1]
    parts.update(p for p in rest.replace("@", "/").replace(":", "/").replace("?", "/").split("/") if len(p) >= 6)
    for p in sorted(parts, key=len, reverse=True):
        message = message.replace(p, "…")
    return message[:300]
