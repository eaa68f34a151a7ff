"""The exceptions policy-watch raises.

Every error carries the context a user needs to act on it::

    PolicyWatchError
    ├── ConfigError      file, key (and line for TOML syntax errors)
    ├── FetchError       vendor, url, cause
    │   └── BlockedError     a bot challenge or login wall instead of the page
    ├── ParseError       what was found on the page instead of a subprocessor list
    ├── StoreError       the database file and what went wrong
    │   └── LockedError      another check already runs against the database
    └── NotFoundError    a window (or other record) named by the user does not exist
"""

from __future__ import annotations


class PolicyWatchError(Exception):
    """Base class of every error policy-watch reports to the user."""


class ConfigError(PolicyWatchError):
    def __init__(self, path: str, key: str | None, message: str) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")


class FetchError(PolicyWatchError):
    def __init__(self, url: str, cause: str, *, vendor: str | None = None, status: int | None = None) -> None:
        self.url = url
        self.cause = cause
        self.vendor = vendor
        self.status = status
        super().__init__(url, cause)

    def __str__(self) -> str:
        prefix = f"{self.vendor}: " if self.vendor else ""
        return f"{prefix}{self.url}: {self.cause}"


class BlockedError(FetchError):
    """The server answered with a bot challenge or an access-denied page."""


class ParseError(PolicyWatchError):
    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.message = message
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class StoreError(PolicyWatchError):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class LockedError(StoreError):
    """Another policy-watch check holds the run lock of this database."""


class NotFoundError(PolicyWatchError):
    """A record the user named (an objection window by its id) does not exist."""
