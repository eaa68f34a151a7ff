"""policy-watch: watch vendors' subprocessor lists and alert on every change.

As a library, it reads a page and compares two readings::

    from policy_watch import parse_page, diff_pages
    old = parse_page(open("before.html", "rb").read())
    new = parse_page(open("after.html", "rb").read())
    for change in diff_pages(old, new):
        print(change.kind, change.entity, change.field, change.old, change.new)

The names below load their modules on first use, so ``import policy_watch`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Change",
    "ChangeKind",
    "Entry",
    "ParseError",
    "ParsedPage",
    "PolicyWatchError",
    "__version__",
    "diff_pages",
    "parse_page",
]

_HOMES = {
    "Change": "policy_watch.models",
    "ChangeKind": "policy_watch.models",
    "Entry": "policy_watch.models",
    "ParsedPage": "policy_watch.models",
    "ParseError": "policy_watch.errors",
    "PolicyWatchError": "policy_watch.errors",
    "diff_pages": "policy_watch.diff",
    "parse_page": "policy_watch.parse",
}

if TYPE_CHECKING:
    from policy_watch.diff import diff_pages
    from policy_watch.errors import ParseError, PolicyWatchError
    from policy_watch.models import Change, ChangeKind, Entry, ParsedPage
    from policy_watch.parse import parse_page


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'policy_watch' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
