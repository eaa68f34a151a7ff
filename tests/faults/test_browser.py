"""Browser faults: a Chromium that crashes, will not start or hangs, a page whose script never
ends, a page that never settles. The rendered vendor gets a specific error, the other vendor is
checked normally, nothing is invented or lost, and the next healthy run is as if nothing happened."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from faultkit import V1, CaseRecord, db_state, half_written, lost_rows, run_cli

APP = """<!doctype html><html><head><title>Portal</title></head><body><div id="root"></div>
<script>%s
const rows = [["Amazon Web Services", "Hosting", "US"], ["Stripe", "Payments", "US"]];
const t = document.createElement('table');
t.innerHTML = '<tr><th>Subprocessor</th><th>Purpose</th><th>Location</th></tr>' +
  rows.map(r => `<tr><td>${r[0]}</td><td>${r[1]}</td><td>${r[2]}</td></tr>`).join('');
document.getElementById('root').appendChild(t);
</script></body></html>"""
NEVER_ENDS = "while (true) {}"
NEVER_SETTLES = (
    "setInterval(() => { document.title = 'tick ' + Math.random(); "
    "document.body.setAttribute('data-t', Date.now()); }, 50);"
)
RENDERED, PLAIN = "Rendered Vendor", "Plain Vendor"


class Case:
    def __init__(self, tmp: Path, pages: object, record: CaseRecord) -> None:
        self.tmp, self.pages, self.record = tmp, pages, record
        self.db = tmp / "pw.db"
        pages.serve("/plain", V1)  # type: ignore[attr-defined]
        pages.serve("/app", APP % "")  # type: ignore[attr-defined]
        self.write()

    def write(self, browser: str = "/usr/bin/chromium") -> None:
        url = self.pages.url  # type: ignore[attr-defined]
        hook = url("/hook").replace("http://", "json://")
        # timeout: a page's limit from navigation to a settled DOM; 8 s leaves a loaded machine room
        # to render the healthy page, and still ends the pages that never settle.
        (self.tmp / "config.toml").write_text(
            f'[settings]\ndatabase = "{self.db}"\nretries = 0\ntimeout = 8\nalert_retry_minutes = 0\n'
            f'browser = "{browser}"\n\n'
            f'[[vendors]]\nname = "{PLAIN}"\nurl = "{url("/plain")}"\n\n'
            f'[[vendors]]\nname = "{RENDERED}"\nurl = "{url("/app")}"\nrender = "browser"\n\n'
            f'[[notify]]\nname = "hook"\nurl = "{hook}"\n'
        )

    def run(self) -> dict[str, dict[str, object]]:
        out = run_cli(self.tmp / "config.toml", "run", "--json", timeout=120)
        assert out.code in (0, 1), out.err
        return {v["vendor"]: v for v in json.loads(out.out)["vendors"]}

    def check(self, inject: Callable[[], None], heal: Callable[[], None], cause: str) -> None:
        first = self.run()
        assert {v["status"] for v in first.values()} == {"baseline"}, first
        before, posts = db_state(self.db), len(self.pages.posts)  # type: ignore[attr-defined]
        inject()
        got = self.run()
        after = db_state(self.db)
        assert got[PLAIN]["status"] == "unchanged", got[PLAIN]
        bad = got[RENDERED]
        assert bad["status"] == "error", bad
        error = str(bad["error"])
        assert RENDERED in error and self.pages.url("/app") in error, error  # type: ignore[attr-defined]
        assert cause in error, error
        self._count(before, after, posts)
        heal()
        again = self.run()
        assert {v["status"] for v in again.values()} == {"unchanged"}, again
        self._count(before, db_state(self.db), posts)

    def _count(self, before: object, after: object, posts: int) -> None:
        lost = lost_rows(before, after)  # type: ignore[arg-type]
        half = half_written(self.db)
        invented = [k for k in after.snapshots if k not in before.snapshots]  # type: ignore[attr-defined]
        changes = [c for c in after.changes if c not in before.changes]  # type: ignore[attr-defined]
        alerts = [o for o in after.outbox if o not in before.outbox and o[2] != "failure"]  # type: ignore[attr-defined]
        self.record.data_lost += len(lost) + len(half)
        self.record.false_alerts += len(invented) + len(changes) + len(alerts)
        assert not lost and not half and not invented and not changes and not alerts


@pytest.fixture
def case(tmp_path: Path, pages: object, record: CaseRecord) -> Case:
    return Case(tmp_path, pages, record)


def _program(tmp: Path, name: str, script: str) -> str:
    path = tmp / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_browser_crashes_at_start(case: Case, tmp_path: Path) -> None:
    crashing = _program(tmp_path, "crashing", 'echo "Segmentation fault (core dumped)" >&2\nexit 139\n')
    case.check(lambda: case.write(crashing), case.write, cause="did not start")


def test_browser_crashes_while_rendering(case: Case, tmp_path: Path) -> None:
    # The browser starts; when the page is asked for, it is killed, and the page answers after.
    asked, dead = tmp_path / "asked", tmp_path / "dead"
    dying = _program(
        tmp_path,
        "dying",
        '/usr/bin/chromium "$@" &\npid=$!\n'
        f'i=0; while [ ! -e "{asked}" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done\n'
        f'kill -9 $pid\nwait $pid\nstatus=$?\ntouch "{dead}"\nexit $status\n',
    )
    slow = APP % ""

    def kill_the_browser() -> None:
        asked.touch()
        end = time.monotonic() + 60
        while not dead.exists() and time.monotonic() < end:  # another process: no event to wait on
            time.sleep(0.05)

    def inject() -> None:
        case.write(dying)
        case.pages.serve("/app", slow, before=kill_the_browser)  # type: ignore[attr-defined]

    def heal() -> None:
        case.write()
        case.pages.serve("/app", slow)  # type: ignore[attr-defined]

    case.check(inject, heal, cause="the browser crashed while rendering the page")
    assert dead.exists(), "the browser was not killed"


def test_browser_hangs_at_start(case: Case, tmp_path: Path) -> None:
    hanging = _program(tmp_path, "hanging", "exec sleep 120\n")
    case.check(lambda: case.write(hanging), case.write, cause="did not start")


def test_page_script_never_ends(case: Case) -> None:
    case.check(
        lambda: case.pages.serve("/app", APP % NEVER_ENDS),  # type: ignore[attr-defined]
        lambda: case.pages.serve("/app", APP % ""),
        cause="did not finish loading or settle",
    )  # type: ignore[attr-defined]


def test_page_never_settles(case: Case) -> None:
    case.check(
        lambda: case.pages.serve("/app", APP % NEVER_SETTLES),  # type: ignore[attr-defined]
        lambda: case.pages.serve("/app", APP % ""),
        cause="did not finish loading or settle",
    )  # type: ignore[attr-defined]
