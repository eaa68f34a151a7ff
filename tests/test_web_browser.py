"""The review page in a real headless browser: Debian's Chromium driven by Playwright.

Playwright never downloads a browser here: it drives /usr/bin/chromium (installed by .ci/run).
Screenshots of the main pages go to the test's folder, and also to $POLICY_WATCH_SCREENSHOTS
when it is set (that is how docs/ gets the README's).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pwtest import cli
from webtest import EVIL, ZENDESK_NAME, History, build_history, serving

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    h = build_history(tmp_path_factory.mktemp("browser"))
    yield h
    h.pages.close()


def _shoot(page: object, name: str, folder: Path, full_page: bool = False) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
    extra = os.environ.get("POLICY_WATCH_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


def test_objection_recorded_in_the_browser(history: History, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    note = "Objected: Snowflake Inc. would process data in the US"
    with serving(history.config) as server, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            viewport={"width": 1200, "height": 760},
            service_workers="block",
        )
        try:
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.goto(server.url)
            assert page.title() == "Dashboard · policy-watch"
            assert page.locator("h1").first.inner_text() == "Open objection windows (2)"
            assert page.locator("text=Evil <b>Vendor</b>").count() >= 1, "the vendor's name is shown as text"
            _shoot(page, "dashboard", shots)

            row = page.locator("table.windows tr", has_text=ZENDESK_NAME)
            row.get_by_role("link", name="Review window").click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text().startswith("Objection window")
            assert "Snowflake Inc." in page.locator("ul.diff").inner_text()
            page.get_by_label("Object").check()
            page.get_by_label("Note").fill(note)
            page.get_by_role("button", name="Record decision").click()
            page.wait_for_load_state()
            history_text = page.locator("ol.history").inner_text()
            assert "objected" in history_text and note in history_text
            window_id = int(page.url.split("/windows/")[1].split("#")[0])
            page.goto(f"{server.url}windows/{window_id}")
            _shoot(page, "window", shots, full_page=True)

            page.goto(server.url + "vendors")
            _shoot(page, "vendors", shots)
            page.get_by_role("link", name=ZENDESK_NAME).click()
            page.wait_for_load_state()
            page.get_by_role("button", name="Compare the two chosen snapshots").click()
            page.wait_for_load_state()
            assert page.locator("li.diff-added", has_text="Snowflake Inc.").count() == 1
            assert page.locator("li.diff-removed", has_text="Pendo.io, Inc.").count() == 1
            _shoot(page, "diff", shots)
            page.goto(server.url + "changes?risk=any")
            _shoot(page, "changes", shots)
            page.get_by_role("link", name=EVIL).first.click()
            page.wait_for_load_state()
            assert page.title().startswith("Evil <b>Vendor</b>")
            _shoot(page, "vendor", shots)
            assert not console, f"the pages ran or logged something: {console}"
        finally:
            context.close()
    decided = json.loads(cli(history.config, "deadlines", "--all", "--json").stdout)
    window = next(w for w in decided if w["id"] == window_id)
    assert [(d["action"], d["note"]) for d in window["decisions"]] == [("objected", note)]
    for name in ("dashboard", "window", "vendors", "diff", "changes", "vendor"):
        assert (shots / f"{name}.png").stat().st_size > 10_000, name
