"""A vendor whose latest check failed still shows its last good list, marked as stale."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from pwtest import ZENDESK, PageServer, cli, write_config

VENDOR = "Zendesk Connect"


def test_a_failed_check_marks_the_last_good_list_stale(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    config = write_config(tmp_path, [(VENDOR, pages.url("/connect"))])
    assert cli(config, "run").returncode == 0
    fresh = json.loads(cli(config, "show", VENDOR, "--json").stdout)
    assert fresh["stale"] is False and fresh["last_success"]
    read_at = datetime.fromisoformat(fresh["last_success"])

    pages.serve("/connect", b"server exploded", status=500)
    failed = cli(config, "run")
    assert failed.returncode == 1
    assert (
        f"{VENDOR}: stale: its list as last read on {read_at.date().isoformat()} stays the baseline"
        in failed.stdout
    )
    as_json = json.loads(cli(config, "run", "--json").stdout)["vendors"][0]
    assert as_json["stale"] is True and datetime.fromisoformat(as_json["last_success"]) == read_at
    shown = json.loads(cli(config, "show", VENDOR, "--json").stdout)
    assert shown["stale"] is True and datetime.fromisoformat(shown["last_success"]) == read_at
    assert "500" in shown["stale_reason"] and len(shown["entries"]) == 18
    text = cli(config, "show", VENDOR)
    assert "Stale: its latest check failed" in text.stdout and read_at.date().isoformat() in text.stdout, (
        text.stdout
    )
    who = cli(config, "who", "Cloudflare")
    assert f"Stale: {VENDOR}: its latest check failed" in who.stdout, who.stdout
    assert {w["stale"] for w in json.loads(cli(config, "who", "Cloudflare", "--json").stdout)} == {True}

    pages.serve("/connect", (ZENDESK / "v1.html").read_bytes())
    assert cli(config, "run").returncode == 0
    again = json.loads(cli(config, "show", VENDOR, "--json").stdout)
    assert again["stale"] is False and datetime.fromisoformat(again["last_success"]) > read_at
    assert "Stale" not in cli(config, "show", VENDOR).stdout
