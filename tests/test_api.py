"""The public API: what a library user imports from ``policy_watch``."""

from __future__ import annotations

import subprocess
import sys

from pwtest import ZENDESK

import policy_watch


def test_parse_and_diff_two_pages_through_the_public_names() -> None:
    old = policy_watch.parse_page((ZENDESK / "v1.html").read_bytes())
    new = policy_watch.parse_page((ZENDESK / "v2.html").read_bytes())
    assert isinstance(old, policy_watch.ParsedPage) and all(
        isinstance(e, policy_watch.Entry) for e in old.entries
    )
    changes = policy_watch.diff_pages(old, new)
    assert changes and all(isinstance(c, policy_watch.Change) for c in changes)
    assert {c.kind for c in changes} <= set(policy_watch.ChangeKind)
    assert policy_watch.diff_pages(old, old) == []


def test_every_exported_name_resolves() -> None:
    for name in policy_watch.__all__:
        assert getattr(policy_watch, name) is not None, name


def test_importing_the_package_loads_no_stage() -> None:
    code = "import sys, policy_watch; print(sorted(m for m in sys.modules if m.startswith('policy_watch.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
