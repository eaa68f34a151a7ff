"""The pipeline in-process: failure isolation per vendor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pwtest import ZENDESK, PageServer, write_config

from policy_watch import collect, pipeline
from policy_watch.config import load_config
from policy_watch.fetch import Fetcher
from policy_watch.store import Store


def test_a_bug_on_one_page_does_not_abort_the_others(
    tmp_path: Path, pages: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages.serve("/good", (ZENDESK / "v1.html").read_bytes())
    pages.serve("/bad", (ZENDESK / "v1.html").read_bytes())
    config = load_config(write_config(tmp_path, [("Good", pages.url("/good")), ("Bad", pages.url("/bad"))]))
    real = collect.parse_page

    def flaky(body: bytes, **kw: Any) -> Any:
        if str(kw.get("source", "")).endswith("/bad"):
            raise RuntimeError("boom")
        return real(body, **kw)

    monkeypatch.setattr(collect, "parse_page", flaky)
    store = Store.open(config.settings.database)
    with Fetcher(pipeline.fetch_options(config)) as fetcher:
        report = pipeline.run_check(config, store, fetcher)
    by = {r.vendor: r for r in report.results}
    assert by["Good"].status == "baseline"
    assert by["Bad"].status == "error" and "internal error" in (by["Bad"].error or "")
    assert store.query("select count(*) as n from snapshots")[0]["n"] == 1
    store.close()
