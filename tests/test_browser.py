"""Pages a browser renders, through the real command line against a local server, with Debian's
Chromium: two versions each, the exact changes, and the browser's requests under the fetch policy."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from pwtest import PageServer, cli, write_config
from test_sources import changes, run_ok

from policy_watch.browser import Browser, BrowserOptions

TABLE_APP = """<!doctype html><html><head><title>Trust Center</title></head><body><div id="root"></div>
<script>
const rows = %s;
const t = document.createElement('table');
t.innerHTML = '<tr><th>Subprocessor</th><th>Purpose</th><th>Location</th></tr>' +
  rows.map(r => `<tr><td>${r[0]}</td><td>${r[1]}</td><td>${r[2]}</td></tr>`).join('');
setTimeout(() => document.getElementById('root').appendChild(t), 150);
</script></body></html>"""

# A shell that never changes: its data comes from /api/subprocessors, as on hosted trust portals.
CARDS_APP = """<!doctype html><html><head><title>Security portal</title>
<script src="/static/app.js" defer></script></head><body><div id="app"></div></body></html>"""
CARDS_JS = """
fetch('/api/subprocessors').then(r => r.json()).then(data => {
  const root = document.getElementById('app');
  const h = document.createElement('h2'); h.textContent = data.title; root.appendChild(h);
  const list = document.createElement('div');
  for (const s of data.items) {
    const card = document.createElement('div'); card.className = 'card';
    card.innerHTML = `<h3>${s.name}</h3><p>Purpose: ${s.purpose}</p><p>Location: ${s.location}</p>`;
    list.appendChild(card);
  }
  root.appendChild(list);
});
"""


def _api(items: list[tuple[str, str, str]]) -> str:
    return json.dumps(
        {"title": "Subprocessors", "items": [{"name": n, "purpose": p, "location": c} for n, p, c in items]}
    )


def test_rendered_table_from_inline_data_two_versions(tmp_path: Path, pages: PageServer) -> None:
    v1 = [["Amazon Web Services", "Hosting", "United States"], ["Mailgun", "Email delivery", "United States"]]
    pages.serve("/trust", TABLE_APP % json.dumps(v1))
    config = write_config(tmp_path, [("App", pages.url("/trust"))], extra='render = "browser"\n')
    run_ok(config, "1 baseline")
    v2 = [
        ["Amazon Web Services", "Hosting", "United States, Germany"],
        ["Postmark", "Email delivery", "United States"],
    ]
    pages.serve("/trust", TABLE_APP % json.dumps(v2))
    run_ok(config, "1 changed")
    assert changes(config) == sorted(
        [
            ("added", "", "Postmark", None, None, None),
            ("removed", "", "Mailgun", None, None, None),
            ("changed", "", "Amazon Web Services", "country", "United States", "United States, Germany"),
        ]
    )
    with sqlite3.connect(tmp_path / "pw.db") as db:  # the evidence is the rendered DOM
        rows = db.execute("select count(*) from bodies").fetchone()[0]
    assert rows == 2


def test_shell_never_changes_while_its_json_does(tmp_path: Path, pages: PageServer) -> None:
    """Not configured for a browser: the plain page is a script shell, so it is rendered by itself,
    and on every run, though the shell answers 304 to a conditional request."""
    pages.serve("/portal", CARDS_APP, ETag='"shell-1"')
    pages.serve("/static/app.js", CARDS_JS, Content_Type="text/javascript", ETag='"js-1"')
    v1 = [
        ("Snowflake Inc.", "Data warehouse", "United States"),
        ("Zendesk, Inc.", "Support", "United States"),
    ]
    pages.serve("/api/subprocessors", _api(v1), Content_Type="application/json")
    config = write_config(tmp_path, [("Portal", pages.url("/portal"))])

    shown = cli(config, "parse", pages.url("/portal"))
    assert shown.returncode == 0, shown.stderr
    assert "read by: html, from the page as a browser rendered it" in " ".join(shown.stdout.split())
    assert 'render = "browser" in its [[vendors]] table' in shown.stderr

    run_ok(config, "1 baseline")
    run_ok(config, "1 unchanged")
    v2 = [
        ("Snowflake Inc.", "Data warehouse", "United States, Ireland"),
        ("Intercom, Inc.", "Support chat", "United States"),
    ]
    pages.serve("/api/subprocessors", _api(v2), Content_Type="application/json")
    run_ok(config, "1 changed")
    assert changes(config) == sorted(
        [
            ("added", "Subprocessors", "Intercom, Inc.", None, None, None),
            ("removed", "Subprocessors", "Zendesk, Inc.", None, None, None),
            (
                "changed",
                "Subprocessors",
                "Snowflake Inc.",
                "country",
                "United States",
                "United States, Ireland",
            ),
        ]
    )
    api_calls = [p for m, p, _ in pages.requests if p == "/api/subprocessors"]
    assert len(api_calls) == 4  # parse, and three runs: every run rendered the page


def test_render_setting_with_a_304_shell(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/portal", CARDS_APP, ETag='"shell-1"')
    pages.serve("/static/app.js", CARDS_JS, Content_Type="text/javascript")
    pages.serve(
        "/api/subprocessors", _api([("Okta, Inc.", "SSO", "United States")]), Content_Type="application/json"
    )
    config = write_config(tmp_path, [("Portal", pages.url("/portal"))], extra='render = "browser"\n')
    run_ok(config, "1 baseline")
    pages.serve(
        "/api/subprocessors",
        _api([("Okta, Inc.", "SSO", "United States"), ("Auth0", "Login", "EU")]),
        Content_Type="application/json",
    )
    run_ok(config, "1 changed")
    assert changes(config) == [("added", "Subprocessors", "Auth0", None, None, None)]


def test_page_script_cannot_reach_loopback_or_link_local(tmp_path: Path, pages: PageServer) -> None:
    intranet = PageServer()  # another local service: the page's script must not reach it
    try:
        intranet.serve("/admin", "secret")
        probe = f"""<script>
        for (const u of ['{intranet.url("/admin")}', 'http://169.254.169.254/latest/meta-data/',
                         'http://localhost:{intranet.port}/admin']) {{
          fetch(u).then(() => {{ document.getElementById('leak').textContent += 'reached ' + u; }})
                  .catch(() => {{ document.getElementById('blocked').textContent += 'x'; }});
        }}
        const img = new Image(); img.src = '{intranet.url("/pixel.gif")}';
        </script><p id="leak"></p><p id="blocked"></p>"""
        pages.serve(
            "/trust",
            (TABLE_APP % json.dumps([["Stripe", "Payments", "US"]])).replace("</body>", probe + "</body>"),
        )
        config = write_config(tmp_path, [("App", pages.url("/trust"))], extra='render = "browser"\n')
        run_ok(config, "1 baseline")
        assert intranet.requests == [], intranet.requests
        with sqlite3.connect(tmp_path / "pw.db") as db:
            (entries,) = db.execute("select count(*) from entries").fetchone()
        assert entries == 1
    finally:
        intranet.close()


def test_missing_chromium_is_one_clear_error(tmp_path: Path, pages: PageServer) -> None:
    pages.serve("/trust", TABLE_APP % "[]")
    pages.serve(
        "/plain",
        "<table><tr><th>Subprocessor</th><th>Purpose</th></tr><tr><td>Okta</td><td>SSO</td></tr></table>",
    )
    config = write_config(
        tmp_path,
        [("App", pages.url("/trust")), ("Plain", pages.url("/plain"))],
        settings=f'browser = "{tmp_path}/no-chromium"',
        extra='render = "browser"\n',
    )
    # render = "browser" went to the last vendor; move it to App
    text = config.read_text().replace('render = "browser"\n', "")
    text = text.replace('name = "App"\n', 'name = "App"\nrender = "browser"\n')
    config.write_text(text)
    out = cli(config, "run")
    assert out.returncode == 1
    assert "1 baseline" in out.stdout
    err = out.stderr
    assert "App" in err and "Chromium was not found" in err and "apt-get install chromium" in err
    assert err.count("Chromium was not found") == 1


# Reads what an earlier page of the same origin could have left in its tab, lists it as rows, then
# leaves all of it behind for the next vendor's page.
LEFTOVERS_APP = """<!doctype html><html><head><title>Portal</title></head><body><div id="root"></div>
<script>
const seen = [];
for (const event of ['pagehide', 'unload', 'visibilitychange']) {  // run as the tab leaves the page
  addEventListener(event, () => { sessionStorage.setItem('left', '1'); localStorage.setItem('left', '1'); });
}
if (localStorage.getItem('left')) seen.push('local storage');
if (sessionStorage.getItem('left')) seen.push('session storage');
if (document.cookie.includes('left=')) seen.push('cookie');
if (window.name) seen.push('window name');
const open = indexedDB.open('left');
open.onupgradeneeded = () => open.result.createObjectStore('s');
open.onsuccess = () => {
  const db = open.result;
  const get = db.transaction('s').objectStore('s').get('left');
  get.onsuccess = () => {
    if (get.result) seen.push('indexeddb');
    db.transaction('s', 'readwrite').objectStore('s').put('1', 'left');
    localStorage.setItem('left', '1'); sessionStorage.setItem('left', '1');
    document.cookie = 'left=1; max-age=3600'; window.name = 'left';
    const rows = [['Amazon Web Services', 'Hosting', 'US'], ...seen.map(s => ['Leftover ' + s, 'Found', 'US'])];
    const t = document.createElement('table');
    t.innerHTML = '<tr><th>Subprocessor</th><th>Purpose</th><th>Location</th></tr>' +
      rows.map(r => `<tr><td>${r[0]}</td><td>${r[1]}</td><td>${r[2]}</td></tr>`).join('');
    document.getElementById('root').appendChild(t);
  };
};
</script></body></html>"""


def test_one_tab_serves_vendors_one_after_another_and_nothing_is_left_between_them(
    tmp_path: Path, pages: PageServer
) -> None:
    """One tab (browser_pages = 1), one vendor at a time, all on one origin: each page finds no
    cookie, storage or IndexedDB entry, nor the window name, that the page before it left."""
    names = [f"Portal {i}" for i in range(4)]
    for i in range(4):
        pages.serve(f"/portal/{i}", LEFTOVERS_APP)
    config = write_config(
        tmp_path,
        [(n, pages.url(f"/portal/{i}")) for i, n in enumerate(names)],
        settings="browser_pages = 1\nconcurrency = 1",
    )
    config.write_text(config.read_text().replace('url = "', 'render = "browser"\nurl = "'))
    run_ok(config, "4 baseline")
    with sqlite3.connect(tmp_path / "pw.db") as db:
        names_read = sorted(name for (name,) in db.execute("select entity from entries"))
    assert names_read == ["Amazon Web Services"] * 4, names_read


def _renderers_of(pid: int) -> list[int]:
    """The Chromium renderer processes among pid's descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            if b"--type=renderer" in (Path(f"/proc/{p}/cmdline")).read_bytes():
                found.append(p)
        except OSError:
            pass
    return found


def test_a_tab_whose_renderer_died_is_replaced_not_reused(pages: PageServer) -> None:
    """The renderer of the one tab is killed while the tab waits between two pages: the next page
    gets a new tab in the same browser, and renders."""
    pages.serve("/trust", TABLE_APP % json.dumps([["Stripe", "Payments", "US"]]))
    with Browser(BrowserOptions(pages=1, timeout=15)) as browser:
        assert b"Stripe" in browser.render(pages.url("/trust")).body
        waited = time.monotonic()
        while browser.idle_tabs < 1 and time.monotonic() - waited < 30:  # the tab is being cleared
            time.sleep(0.05)
        assert browser.idle_tabs == 1
        killed = _renderers_of(os.getpid())
        assert killed
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        assert b"Stripe" in browser.render(pages.url("/trust")).body
        assert (browser.started, browser.tabs) == (1, 2)


def test_a_reused_tab_leaves_no_session_storage_and_is_not_replaced(pages: PageServer) -> None:
    """Session storage is the tab's: it is cleared through the page's own frames before the tab
    leaves it, so the same tab serves the next page of the same origin and finds nothing left."""
    pages.serve("/portal", LEFTOVERS_APP)
    with Browser(BrowserOptions(pages=1, timeout=15)) as browser:
        for _ in range(3):
            body = browser.render(pages.url("/portal")).body
            assert b"Amazon Web Services" in body and b"<td>Leftover" not in body, body
            _wait_for_idle_tab(browser)
        assert browser.tabs == 1


GONE_FRAME_APP = """<!doctype html><html><head><title>Portal</title></head><body><script>
sessionStorage.setItem('left', '1');
const f = document.createElement('iframe');
f.src = '/portal';
f.onload = () => { f.remove(); const t = document.createElement('table');
  t.innerHTML = '<tr><th>Subprocessor</th><th>Purpose</th><th>Location</th></tr><tr><td>Stripe</td><td>Payments</td><td>US</td></tr>';
  document.body.appendChild(t); };
document.body.appendChild(f);
</script></body></html>"""


def test_a_frame_of_the_same_origin_that_went_leaves_nothing_and_the_tab_is_reused(pages: PageServer) -> None:
    """A removed frame of the page's own origin shares its session storage: cleared with it."""
    pages.serve("/gone", GONE_FRAME_APP)
    _then_the_portal_finds_nothing(pages, "/gone", b"Stripe", tabs=1)
    assert all(
        "policy-watch" not in path for _, path, _ in pages.requests
    )  # the clearing page is never fetched


MOVES_APP = """<!doctype html><html><head><title>Portal</title></head><body><script>
sessionStorage.setItem('left', '1');
location.replace(location.href.replace('127.0.0.1', 'localhost').replace('/moves', '/portal'));
</script></body></html>"""


def test_a_page_that_moved_to_another_origin_gets_its_tab_replaced(
    pages: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storage of an origin the page left is out of the tab's reach: the tab is replaced and
    the next page, back on the first origin, finds nothing left."""
    import policy_watch.browser

    # localhost: a second origin, which the fetch policy would refuse as loopback
    monkeypatch.setattr(policy_watch.browser, "is_private_host", lambda host: False)
    pages.serve("/moves", MOVES_APP)
    _then_the_portal_finds_nothing(pages, "/moves", b"Amazon Web Services", tabs=2)


def _then_the_portal_finds_nothing(pages: PageServer, first: str, shows: bytes, tabs: int) -> None:
    """One tab renders ``first``, then the leftovers page of the same origin, which must find
    nothing the first page left; ``tabs``: how many tabs that took."""
    pages.serve("/portal", LEFTOVERS_APP)
    with Browser(BrowserOptions(pages=1, timeout=15)) as browser:
        assert shows in browser.render(pages.url(first)).body
        body = browser.render(pages.url("/portal")).body
        assert b"Amazon Web Services" in body and b"<td>Leftover" not in body, body
        assert browser.tabs == tabs


def _wait_for_idle_tab(browser: Browser) -> None:
    waited = time.monotonic()
    while browser.idle_tabs < 1 and time.monotonic() - waited < 30:  # the tab is being cleared
        time.sleep(0.05)
    assert browser.idle_tabs == 1


STUCK_ON_LEAVING_APP = TABLE_APP.replace(
    "<script>", "<script>addEventListener('pagehide', () => { while (true) {} });", 1
)


def test_a_page_that_never_lets_go_of_its_tab_costs_the_tab_not_the_next_vendor(pages: PageServer) -> None:
    """A pagehide handler that never returns: the tab cannot be cleared in its time, so it is
    closed, and the next vendor's page renders in a new one."""
    pages.serve("/stuck", STUCK_ON_LEAVING_APP % json.dumps([["Stripe", "Payments", "US"]]))
    _then_the_portal_finds_nothing(pages, "/stuck", b"Stripe", tabs=2)
