"""Load and validate config.toml into typed, frozen values.

Validation happens once, here, at the edge: every later stage trusts these values.
Each problem raises ConfigError naming the file and the key (``vendors[2].url``). Every number
has a range that later arithmetic (dates, timeouts, retry delays) can bear.

An unset ``${VAR}`` in a notify URL is not an error at load: commands that only read the
database work without alert secrets. It is one when sending: ``Config.require_notify()``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from policy_watch.errors import ConfigError
from policy_watch.meaning.transfers import TransferOverrides
from policy_watch.models import ChangeKind, ParseRules

log = logging.getLogger(__name__)

# Change kinds that open an objection window: a kind ("added", "renamed", ...) or, for "changed",
# the field that changed ("country", "purpose", ...). "changed" alone means any field.
DEFAULT_WINDOW_KINDS = ("added", "renamed", "country", "purpose")
DEFAULT_BROWSER = "/usr/bin/chromium"  # Debian's chromium package
RENDER_MODES = ("browser",)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Settings:
    database: Path
    objection_days: int = 30
    user_agent: str = "policy-watch/0.1 (+https://github.com/policy-watch/policy-watch)"
    timeout: float = 20.0
    max_bytes: int = 10 * 1024 * 1024
    concurrency: int = 16
    per_host: int = 2
    retries: int = 2
    max_redirects: int = 10
    run_at: str = "07:00"
    timezone: str = "UTC"
    failure_threshold: int = 3
    reminder_days: tuple[int, ...] = (7, 1)
    window_kinds: tuple[str, ...] = DEFAULT_WINDOW_KINDS
    guard_ratio: float = 0.5
    alert_retry_minutes: int = 5  # first retry delay of a failed alert; doubles per attempt, 6 h at most
    browser: str = DEFAULT_BROWSER  # the Chromium that renders script-built pages
    browser_pages: int = 3  # pages the browser renders at once
    web: str | None = None  # "HOST:PORT": the daemon also serves the review page there


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    url: str
    objection_days: int
    rules: ParseRules | None = None
    blocked: str = "auto"  # "auto": a page without a list that looks like a bot challenge is blocked; "never"
    secrets: tuple[tuple[str, str], ...] = ()  # (value, "${NAME}") of each variable in the URL: never shown
    render: str | None = None  # "browser": always read the page as a browser renders it
    follow: str | None = None  # read the document behind the link whose text or address holds this

    @property
    def is_file(self) -> bool:
        return urlsplit(self.url).scheme not in ("http", "https")

    @property
    def shown_url(self) -> str:
        """The URL fit to print, send and store: ``${NAME}`` where a secret from the environment is."""
        return hide_secrets(self.url, self.secrets)

    def hide(self, text: str) -> str:
        """``text`` (an error message, a redirect target) without this vendor's secrets."""
        return hide_secrets(text, self.secrets)


MIN_SECRET = 4  # shorter values of variables are not looked for in text (they would hide everything)


def hide_secrets(text: str, secrets: Iterable[tuple[str, str]]) -> str:
    """``text`` with each secret value, as is or URL-encoded, replaced by the ``${NAME}`` it came
    from: the one home of redaction for values taken from the environment."""
    forms = {
        (form, name)
        for value, name in secrets
        if len(value) >= MIN_SECRET
        for form in (value, quote(value, safe=""), quote_plus(value, safe=""))
    }
    for form, name in sorted(forms, key=lambda f: len(f[0]), reverse=True):
        text = text.replace(form, name)
    return text


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    url: str  # secret: never print it, use notify.redact()
    vendors: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    digest: bool = False
    operator: bool = False
    name: str = ""
    unset: tuple[str, ...] = ()  # environment variables the URL needs that are not set: it cannot send
    key: str = "notify"  # where it is in the config file, e.g. notify[2].url

    def unset_reason(self) -> str:
        names = ", ".join(f"${{{n}}}" for n in self.unset)
        return f"environment variable {names} is not set (needed by {self.key}, target {self.name!r})"


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    settings: Settings
    vendors: tuple[Vendor, ...]
    notify: tuple[NotifyTarget, ...] = field(default_factory=tuple)
    transfers: TransferOverrides = field(
        default_factory=TransferOverrides
    )  # [transfers]: the user's own adequacy lists and places
    aliases: tuple[
        tuple[str, tuple[str, ...]], ...
    ] = ()  # [aliases]: company -> the names it is listed under

    def vendor(self, name: str) -> Vendor:
        for v in self.vendors:
            if v.name.casefold() == name.casefold():
                return v
        known = ", ".join(v.name for v in self.vendors) or "none"
        raise ConfigError(str(self.path), "vendors", f"no vendor named {name!r} (known: {known})")

    def require_notify(self) -> None:
        """Raise ConfigError when a notify target's URL needs an environment variable that is not set."""
        for t in self.notify:
            if t.unset:
                raise ConfigError(str(self.path), t.key, t.unset_reason())


# --- small typed readers --------------------------------------------------------------------------

Checker = Callable[[Any], bool]
_TYPES: dict[str, Checker] = {
    "a string": lambda v: isinstance(v, str),
    "an integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "true or false": lambda v: isinstance(v, bool),
    "a list of strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "a list of integers": lambda v: (
        isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    ),
    "a table": lambda v: isinstance(v, dict),
    "a list": lambda v: isinstance(v, list),
}


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(str(self.path), key, message)

    def table(self, data: Mapping[str, Any], where: str, schema: Mapping[str, str]) -> dict[str, Any]:
        for key in data:
            if key not in schema:
                allowed = ", ".join(sorted(schema))
                raise self.fail(f"{where}.{key}" if where else key, f"unknown key (allowed: {allowed})")
        out: dict[str, Any] = {}
        for key, kind in schema.items():
            if key not in data:
                continue
            value = data[key]
            if not _TYPES[kind](value):
                raise self.fail(
                    f"{where}.{key}" if where else key,
                    f"expected {kind}, got {type(value).__name__} {value!r}",
                )
            out[key] = value
        return out

    def expand(self, value: str, key: str) -> str:
        return self.expand_secrets(value, key)[0]

    def expand_secrets(self, value: str, key: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        """``value`` with each ``${NAME}`` replaced from the environment, and the (value, "${NAME}")
        pairs substituted."""
        found: list[tuple[str, str]] = []

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise self.fail(key, f"environment variable ${{{name}}} is not set")
            found.append((os.environ[name], m.group(0)))
            return os.environ[name]

        return _ENV.sub(sub, value), tuple(found)

    def missing(self, value: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for n in _ENV.findall(value) if n not in os.environ))

    def in_range(self, value: int | float, key: str) -> None:
        """``value`` within the bounds of ``_RANGES`` (and a finite number)."""
        low, high, unit = _RANGES[key.rsplit(".", 1)[-1]]
        if not (math.isfinite(value) and low <= value <= high):
            raise self.fail(key, f"must be between {low:g} and {high:g}{unit}, got {value}")


# key: (lowest, highest, unit). Wide enough for any real use, narrow enough for date and time arithmetic.
_RANGES: dict[str, tuple[float, float, str]] = {
    "objection_days": (1, 3650, " days"),
    "timeout": (0.001, 3600, " seconds"),
    "max_bytes": (1, 2**31, " bytes"),
    "concurrency": (1, 1000, ""),
    "per_host": (1, 1000, ""),
    "retries": (0, 100, ""),
    "max_redirects": (0, 100, ""),
    "failure_threshold": (1, 10000, " runs"),
    "reminder_days": (0, 3650, " days"),
    "guard_ratio": (0.000001, 1, ""),
    "alert_retry_minutes": (0, 1440, " minutes"),
    "browser_pages": (1, 64, " pages"),
}

_SETTINGS = {
    "database": "a string",
    "objection_days": "an integer",
    "user_agent": "a string",
    "timeout": "a number",
    "max_bytes": "an integer",
    "concurrency": "an integer",
    "per_host": "an integer",
    "retries": "an integer",
    "max_redirects": "an integer",
    "run_at": "a string",
    "timezone": "a string",
    "failure_threshold": "an integer",
    "reminder_days": "a list of integers",
    "window_kinds": "a list of strings",
    "guard_ratio": "a number",
    "alert_retry_minutes": "an integer",
    "processes": "an integer",  # no longer used: accepted, with a warning, so older configs still load
    "browser": "a string",
    "browser_pages": "an integer",
    "web": "a string",
}
_VENDOR = {
    "name": "a string",
    "url": "a string",
    "objection_days": "an integer",
    "parse": "a table",
    "date_format": "a string",
    "blocked": "a string",
    "render": "a string",
    "follow": "a string",
}
BLOCKED_GUESSES = ("auto", "never")
_PARSE = {
    "row": "a string",
    "entity": "a string",
    "purpose": "a string",
    "country": "a string",
    "section": "a string",
}
_NOTIFY = {
    "url": "a string",
    "name": "a string",
    "vendors": "a list of strings",
    "kinds": "a list of strings",
    "digest": "true or false",
    "operator": "true or false",
}
# "transfer": a change that sends data to a new place outside the EEA without full adequacy.
WINDOW_KINDS = {k.value for k in ChangeKind} | {"country", "purpose", "section", "transfer"}
_KINDS = WINDOW_KINDS | {"structure", "failure", "reminder"}


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raise ConfigError on any problem."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(p.absolute()), None, "config file not found") from None
    except OSError as e:
        raise ConfigError(str(p), None, f"cannot read config file: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(p), None, "config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), None, f"TOML syntax error: {e}") from None
    return parse_config(data, p)


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    r = _Reader(path)
    top = r.table(
        data,
        "",
        {
            "settings": "a table",
            "vendors": "a list",
            "notify": "a list",
            "transfers": "a table",
            "aliases": "a table",
        },
    )
    settings = _settings(r, top.get("settings", {}), path)
    vendors = _vendors(r, data.get("vendors", []), settings)
    notify = _notify(r, data.get("notify", []), {v.name for v in vendors})
    transfers = _transfers(r, top.get("transfers", {}))
    aliases = _aliases(r, top.get("aliases", {}))
    return Config(
        path=path, settings=settings, vendors=vendors, notify=notify, transfers=transfers, aliases=aliases
    )


def _settings(r: _Reader, data: Mapping[str, Any], path: Path) -> Settings:
    s = r.table(data, "settings", _SETTINGS)
    db = Path(r.expand(s.pop("database", "data/policy_watch.db"), "settings.database")).expanduser()
    if not db.is_absolute():
        db = path.resolve().parent / db
    if "processes" in s:
        del s["processes"]
        log.warning(
            "%s: settings.processes is no longer used (pages are fetched by threads); remove it", path
        )
    for key in _RANGES:
        if key in s and key != "reminder_days":
            r.in_range(s[key], f"settings.{key}")
    for day in s.get("reminder_days", []):
        r.in_range(day, "settings.reminder_days")
    if "run_at" in s and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", s["run_at"]):
        raise r.fail("settings.run_at", f"expected a time HH:MM, got {s['run_at']!r}")
    if "timezone" in s:
        _check_timezone(r, s["timezone"])
    if "web" in s and not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\s]+):\d{1,5}", s["web"]):
        raise r.fail("settings.web", f"expected HOST:PORT such as 127.0.0.1:8080, got {s['web']!r}")
    if "guard_ratio" in s and not 0 < s["guard_ratio"] <= 1:
        raise r.fail("settings.guard_ratio", f"must be in (0, 1], got {s['guard_ratio']}")
    if "window_kinds" in s:
        bad = [k for k in s["window_kinds"] if k not in WINDOW_KINDS]
        if bad:
            raise r.fail("settings.window_kinds", f"unknown change kind {bad[0]!r}")
        s["window_kinds"] = tuple(s["window_kinds"])
    if "reminder_days" in s:
        s["reminder_days"] = tuple(sorted(set(s["reminder_days"]), reverse=True))
    if "timeout" in s:
        s["timeout"] = float(s["timeout"])
    if "browser" in s:
        if not s["browser"].strip():
            raise r.fail("settings.browser", "must name the Chromium program (default /usr/bin/chromium)")
        s["browser"] = str(Path(r.expand(s["browser"].strip(), "settings.browser")).expanduser())
    return Settings(database=db, **s)


def _check_timezone(r: _Reader, name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.fail("settings.timezone", f"unknown time zone {name!r}") from None


def _vendors(r: _Reader, items: list[Any], settings: Settings) -> tuple[Vendor, ...]:
    seen: dict[str, int] = {}
    out: list[Vendor] = []
    for i, item in enumerate(items):
        where = f"vendors[{i + 1}]"
        if not isinstance(item, dict):
            raise r.fail(where, "expected a table ([[vendors]])")
        v = r.table(item, where, _VENDOR)
        for key in ("name", "url"):
            if not str(v.get(key, "")).strip():
                raise r.fail(f"{where}.{key}", "is required")
        name = v["name"].strip()
        if name.casefold() in seen:
            raise r.fail(
                f"{where}.name", f"duplicate vendor name {name!r} (also vendors[{seen[name.casefold()]}])"
            )
        seen[name.casefold()] = i + 1
        expanded, secrets = r.expand_secrets(v["url"].strip(), f"{where}.url")
        url = _vendor_url(r, expanded, f"{where}.url")
        days = v.get("objection_days", settings.objection_days)
        r.in_range(days, f"{where}.objection_days")
        rules = None
        if "parse" in v or "date_format" in v:
            p = r.table(v.get("parse", {}), f"{where}.parse", _PARSE)
            if p and "row" not in p:
                raise r.fail(f"{where}.parse.row", "is required when [parse] selectors are given")
            if p and "entity" not in p:
                raise r.fail(f"{where}.parse.entity", "is required when [parse] selectors are given")
            rules = ParseRules(date_format=v.get("date_format"), **p)
        render, follow = v.get("render"), v.get("follow")
        if render is not None and render not in RENDER_MODES:
            raise r.fail(f"{where}.render", f'expected "browser", got {render!r}')
        if follow is not None and not follow.strip():
            raise r.fail(f"{where}.follow", "must be the text or part of the address of a link")
        if render is not None and follow is not None:
            raise r.fail(f"{where}.follow", 'cannot be used with render = "browser"')
        if follow is not None and urlsplit(url).scheme not in ("http", "https"):
            raise r.fail(f"{where}.follow", "needs an http(s) URL")

        blocked = v.get("blocked", "auto")
        if blocked not in BLOCKED_GUESSES:
            raise r.fail(
                f"{where}.blocked",
                f"expected one of {', '.join(map(repr, BLOCKED_GUESSES))}, got {blocked!r}",
            )
        out.append(
            Vendor(
                name=name,
                url=url,
                objection_days=days,
                rules=rules,
                blocked=blocked,
                secrets=secrets,
                render=render,
                follow=follow.strip() if follow else None,
            )
        )
    return tuple(out)


def _vendor_url(r: _Reader, url: str, key: str) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise r.fail(key, f"URL has no host: {url!r}")
        return url
    if parts.scheme == "file":
        return parts.path
    if parts.scheme and len(parts.scheme) > 1:
        raise r.fail(key, f"unsupported URL scheme {parts.scheme!r} (use http, https or a file path)")
    file = Path(url).expanduser()
    if not file.is_absolute():
        file = r.path.resolve().parent / file
    return str(file)


def _notify(r: _Reader, items: list[Any], vendor_names: set[str]) -> tuple[NotifyTarget, ...]:
    out: list[NotifyTarget] = []
    for i, item in enumerate(items):
        where = f"notify[{i + 1}]"
        if not isinstance(item, dict):
            raise r.fail(where, "expected a table ([[notify]])")
        n = r.table(item, where, _NOTIFY)
        if not n.get("url", "").strip():
            raise r.fail(f"{where}.url", "is required")
        template = n["url"].strip()
        unset = r.missing(template)
        url = template if unset else r.expand(template, f"{where}.url")  # unset: kept as written, secret-free
        for vname in n.get("vendors", []):
            if vname not in vendor_names:
                raise r.fail(f"{where}.vendors", f"no vendor named {vname!r}")
        for kind in n.get("kinds", []):
            if kind not in _KINDS:
                raise r.fail(
                    f"{where}.kinds", f"unknown change kind {kind!r} (known: {', '.join(sorted(_KINDS))})"
                )
        out.append(
            NotifyTarget(
                url=url,
                vendors=tuple(n.get("vendors", [])),
                kinds=tuple(n.get("kinds", [])),
                digest=n.get("digest", False),
                operator=n.get("operator", False),
                name=n.get("name", f"notify[{i + 1}]"),
                unset=unset,
                key=f"{where}.url",
            )
        )
    return tuple(out)


_TRANSFERS = {
    "adequate": "a list of strings",
    "none": "a list of strings",
    "partial": "a table",
    "places": "a table",
}


def _transfers(r: _Reader, data: Mapping[str, Any]) -> TransferOverrides:
    """``[transfers]``: country codes (ISO 3166-1 alpha-2) to treat as adequate, partial or not adequate,
    and place names to read as a country."""
    from policy_watch.meaning.countries import is_code

    t = r.table(data, "transfers", _TRANSFERS)

    def code(value: Any, key: str) -> str:
        if not isinstance(value, str) or not is_code(value):
            raise r.fail(key, f"expected an ISO 3166-1 alpha-2 country code such as 'US', got {value!r}")
        return value

    adequate = tuple(code(c, "transfers.adequate") for c in t.get("adequate", []))
    none = tuple(code(c, "transfers.none") for c in t.get("none", []))
    both = set(adequate) & set(none)
    if both:
        raise r.fail("transfers.none", f"{sorted(both)[0]!r} is also listed in transfers.adequate")
    partial = []
    for c, condition in t.get("partial", {}).items():
        code(c, f"transfers.partial.{c}")
        if not isinstance(condition, str) or not condition.strip():
            raise r.fail(f"transfers.partial.{c}", f"expected the condition as a string, got {condition!r}")
        partial.append((c, " ".join(condition.split())))
    places = tuple((name, code(c, f"transfers.places.{name}")) for name, c in t.get("places", {}).items())
    return TransferOverrides(adequate, none, tuple(partial), places)


def _aliases(r: _Reader, data: Mapping[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``[aliases]``: ``"Company" = ["short name", ...]``."""
    out = []
    for company, names in data.items():
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise r.fail(f"aliases.{company}", f"expected a list of names, got {names!r}")
        if not company.strip():
            raise r.fail("aliases", "a company name is empty")
        out.append((company.strip(), tuple(n.strip() for n in names)))
    return tuple(out)
