"""The review page over HTTP: a database built by real runs, served by the real `policy-watch serve`."""

from __future__ import annotations

import base64
import getpass
import json
import re
import sqlite3
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pwtest import cli, free_port, wait_for
from webtest import (
    BIDI,
    BIG,
    EVIL,
    FLAKY,
    IMG,
    MENTION,
    SCRIPT,
    ZENDESK_NAME,
    History,
    build_history,
    serving,
)

from policy_watch.web import parse_address
from policy_watch.web.security import Access
from policy_watch.web.templating import untrusted

ATOM = "{http://www.w3.org/2005/Atom}"
ALTERNATE = '<link rel="alternate" type="application/atom+xml" title="policy-watch: all subprocessor changes" href="/feed.atom">'


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    h = build_history(tmp_path_factory.mktemp("web"))
    yield h
    h.pages.close()


@pytest.fixture(scope="module")
def site(history: History) -> Iterator[str]:
    with serving(history.config) as server:
        yield server.url


def _windows(history: History, all_: bool = True) -> list[dict[str, object]]:
    out = cli(history.config, "deadlines", "--json", *(["--all"] if all_ else []))
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def _window_of(history: History, vendor: str) -> int:
    return int(next(w["id"] for w in _windows(history) if w["vendor"] == vendor))  # type: ignore[call-overload]


def _vendor_ids(site: str) -> dict[str, int]:
    page = httpx.get(site + "vendors").text
    found = re.findall(r'<a href="/vendors/(\d+)"><bdi>(.*?)</bdi></a>', page)
    return {name.replace("&lt;", "<").replace("&gt;", ">"): int(i) for i, name in found}


def _pages(site: str, history: History) -> list[str]:
    ids = _vendor_ids(site)
    with sqlite3.connect(history.db) as conn:
        snaps = [r[0] for r in conn.execute("select id from snapshots order by id")]
    today = datetime.now(UTC).date().isoformat()
    paths = [
        "",
        "windows",
        "vendors",
        "changes",
        f"changes?vendor={EVIL}",
        "changes?kind=added",
        f"changes?since={today}",
        "entity",
        f"entity?name={SCRIPT}",
        "entity?name=Snowflake Inc.",
    ]
    for vid in ids.values():
        paths += [f"vendors/{vid}", f"vendors/{vid}?at={today}"]
    evil = ids[EVIL]
    evil_snaps = [s for s in snaps if f"/snapshots/{s}/raw" in httpx.get(f"{site}vendors/{evil}").text]
    paths.append(f"vendors/{evil}/diff?a={min(evil_snaps)}&b={max(evil_snaps)}")
    paths += [f"windows/{w['id']}" for w in _windows(history)]
    return paths


# --- every page ------------------------------------------------------------------------------------------


def test_every_page_answers_with_security_headers_and_the_feed_link(site: str, history: History) -> None:
    for path in _pages(site, history):
        r = httpx.get(site + path)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        assert r.headers["content-type"].startswith("text/html"), path
        csp = r.headers["content-security-policy"]
        assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert ALTERNATE in r.text, path
        for nav in ('href="/windows"', 'href="/vendors"', 'href="/changes"', 'href="/entity"'):
            assert nav in r.text, (path, nav)


def test_dashboard_shows_windows_soonest_first_stale_vendors_and_latest_changes(
    site: str, history: History
) -> None:
    page = httpx.get(site).text
    windows = _windows(history, all_=False)  # other tests may decide one of the two
    assert len(windows) >= 1
    positions = [
        page.index(f'href="/windows/{w["id"]}"') for w in windows
    ]  # deadlines --json is soonest first
    assert positions == sorted(positions)
    assert "Snowflake Inc." in page, "a window names the entities it covers"
    left = windows[0]["days_left"]
    assert f"{left} day" in page
    trouble = page.split("Vendors that need a look")[1].split("Latest changes")[0]
    assert FLAKY in trouble and "error" in trouble and "500" in trouble
    assert ZENDESK_NAME not in trouble
    assert "Pendo.io, Inc." in page.split("Latest changes")[1]


def test_vendors_list_has_status_checks_entries_windows_and_reader(site: str) -> None:
    page = httpx.get(site + "vendors").text
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"<tr>\s*<td><a href=\"/vendors/\d+\"><bdi>(.*?)</bdi>.*?</tr>", page, re.S)
    }
    zendesk = rows[ZENDESK_NAME]
    assert "status-ok" in zendesk and ">18<" in zendesk and ">1<" in zendesk and ">HTML<" in zendesk
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", zendesk)
    flaky = rows[FLAKY]
    assert "status-error" in flaky and ">2<" in flaky  # its last good list still counts


def test_stale_vendor_page_shows_its_last_good_list(site: str) -> None:
    page = httpx.get(f"{site}vendors/{_vendor_ids(site)[FLAKY]}").text
    assert "the list below is the last good one" in page
    assert "Safe One Inc." in page and ">AWS<" in page
    assert "500" in page


def test_vendor_page_lists_as_of_a_date_and_diffs_two_snapshots(site: str) -> None:
    vid = _vendor_ids(site)[ZENDESK_NAME]
    page = httpx.get(f"{site}vendors/{vid}").text
    assert "Snowflake Inc." in page and "Pendo.io, Inc." not in page.split("History of snapshots")[0]
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    before = httpx.get(f"{site}vendors/{vid}?at={yesterday}").text
    assert f"No snapshot on or before {yesterday}" in before
    snaps = sorted(int(s) for s in re.findall(r"/snapshots/(\d+)/raw", page))
    diff = httpx.get(f"{site}vendors/{vid}/diff?a={snaps[0]}&b={snaps[-1]}").text
    added = re.findall(r'<li class="diff-added">(.*?)</li>', diff, re.S)
    removed = re.findall(r'<li class="diff-removed">(.*?)</li>', diff, re.S)
    changed = re.findall(r'<li class="diff-changed">(.*?)</li>', diff, re.S)
    assert len(added) == 1 and "Snowflake Inc." in added[0]
    assert len(removed) == 1 and "Pendo.io, Inc." in removed[0]
    assert len(changed) == 2 and any("<del><bdi>Philippines</bdi></del>" in c for c in changed)
    assert httpx.get(f"{site}vendors/{vid}/diff?a={snaps[0]}").status_code == 400
    other = _vendor_ids(site)[EVIL]
    assert httpx.get(f"{site}vendors/{other}/diff?a={snaps[0]}&b={snaps[-1]}").status_code == 400


def test_raw_page_is_served_as_inert_text(site: str) -> None:
    vid = _vendor_ids(site)[EVIL]
    snap = re.findall(r"/snapshots/(\d+)/raw", httpx.get(f"{site}vendors/{vid}").text)[0]
    r = httpx.get(f"{site}snapshots/{snap}/raw")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp
    assert "<script>document.title='ran'</script>" in r.text, "the evidence is the page as it was fetched"
    assert httpx.get(f"{site}snapshots/999999/raw").status_code == 404


def test_changes_filter_by_vendor_kind_and_date(site: str) -> None:
    def entities(query: str) -> list[str]:
        r = httpx.get(f"{site}changes?{query}")
        assert r.status_code == 200, r.text
        return re.findall(r"<b><bdi>(.*?)</bdi></b>", r.text)

    assert entities(f"vendor={EVIL}") == entities("vendor=evil <b>vendor</b>")
    assert len(entities(f"vendor={EVIL}")) == 3
    assert set(entities("kind=removed")) == {"Pendo.io, Inc."}
    assert set(entities("kind=country")) == {"Zendesk, Inc."}
    assert len(entities("kind=added")) == 4
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    assert entities(f"since={tomorrow}") == []
    assert len(entities(f"until={tomorrow}")) == 7
    assert httpx.get(f"{site}changes?since=yesterday").status_code == 400
    assert httpx.get(f"{site}changes?kind=everything").status_code == 400


def test_entity_page_lists_every_vendor_under_each_name(site: str) -> None:
    def rows(name: str) -> list[tuple[str, ...]]:
        page = httpx.get(f"{site}entity", params={"name": name}).text
        body = page.split("<tbody>")[1] if "<tbody>" in page else ""
        return [
            tuple(re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S))[:2]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
        ]

    evil = "Evil &lt;b&gt;Vendor&lt;/b&gt;"
    both = [(evil, "Amazon Web Services, Inc."), (FLAKY, "AWS")]
    assert sorted(rows("AWS")) == sorted(both), "an alias finds every spelling"
    assert sorted(rows("amazon web services")) == sorted(both)
    assert sorted(rows("safe one inc.")) == sorted([(evil, "Safe One Inc."), (FLAKY, "Safe One Inc.")])
    none = httpx.get(f"{site}entity", params={"name": "Nobody GmbH"}).text
    assert "No vendor lists this company today" in none


def test_transfer_risk_on_the_dashboard_window_and_changes(site: str, history: History) -> None:
    evil_window = _window_of(history, EVIL)
    page = httpx.get(f"{site}windows/{evil_window}").text
    assert '<span class="risk">US:' in page and "DPF" in page
    dashboard = httpx.get(site).text
    if f'href="/windows/{evil_window}"' in dashboard:  # still open (other tests may decide it)
        row = dashboard.split(f'href="/windows/{evil_window}"')[0].rsplit("<tr>", 1)[1]
        assert 'class="risk"' in row and "US:" in row
    risky = httpx.get(f"{site}changes?risk=any").text
    entities = re.findall(r"<b><bdi>(.*?)</bdi></b>", risky)
    assert sorted(entities) == sorted(
        ["&lt;script&gt;alert(&#39;entity&#39;)&lt;/script&gt;Evil Corp", "Snowflake Inc.", "Zendesk, Inc."]
    )
    assert "MY:" in risky, "Philippines → Philippines, Malaysia is a new transfer to Malaysia"
    to_us = re.findall(r"<b><bdi>(.*?)</bdi></b>", httpx.get(f"{site}changes?to=us").text)
    assert sorted(to_us) == [
        "&lt;script&gt;alert(&#39;entity&#39;)&lt;/script&gt;Evil Corp",
        "Snowflake Inc.",
    ]
    assert httpx.get(f"{site}changes?risk=maybe").status_code == 400


# --- hostile text ----------------------------------------------------------------------------------------


RAW_MARKUP = (
    "<script>alert",
    "<b>Vendor</b>",
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<img src=x",
    "onerror=alert(1)>",
)


def test_hostile_text_and_vendor_name_are_escaped_everywhere(site: str, history: History) -> None:
    for path in _pages(site, history):
        page = httpx.get(site + path).text
        assert not [raw for raw in RAW_MARKUP if raw in page], (
            path,
            [raw for raw in RAW_MARKUP if raw in page],
        )
        assert "A" * 400 not in page, f"{path}: a 100 KB cell reached the page whole"
        assert "\x07" not in page
        # a bidi override never leaks past the element that holds it
        assert page.count("\u202e") == len(re.findall("<bdi[^>]*>[^<]*\u202e[^<]*</bdi>", page)), path
    evil = httpx.get(f"{site}vendors/{_vendor_ids(site)[EVIL]}").text
    assert "Evil &lt;b&gt;Vendor&lt;/b&gt;" in evil
    assert "&lt;script&gt;alert(&#39;entity&#39;)&lt;/script&gt;Evil Corp" in evil
    assert "Mention Co &lt;!here&gt; &lt;@U0ABCDEF&gt;" in evil
    assert "&lt;img src=x onerror=alert(1)&gt;" in evil
    assert "100,000 characters" in evil and BIG in evil
    assert BIDI in evil and MENTION not in evil and IMG not in evil


def test_untrusted_filter_escapes_cuts_and_isolates() -> None:
    assert str(untrusted("<b>x</b>")) == "<bdi>&lt;b&gt;x&lt;/b&gt;</bdi>"
    cut = str(untrusted("é" * 500, limit=10))
    assert (
        cut.startswith("<bdi") and "é" * 10 + "…" in cut and "500 characters" in cut and "é" * 11 not in cut
    )
    assert str(untrusted("a\x00b\x1bc")) == "<bdi>abc</bdi>"
    assert str(untrusted(None)) == ""


# --- feeds -----------------------------------------------------------------------------------------------


def test_feeds_parse_as_atom(site: str) -> None:
    r = httpx.get(site + "feed.atom")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(r.content)
    assert root.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated"):
        assert (root.findtext(f"{ATOM}{tag}") or "").strip(), tag
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 2
    for entry in entries:
        assert entry.findtext(f"{ATOM}id") and entry.findtext(f"{ATOM}updated")
        link = entry.find(f"{ATOM}link")
        assert link is not None and link.get("href", "").startswith(site)
    titles = [e.findtext(f"{ATOM}title") or "" for e in entries]
    assert any(t.startswith(f"{ZENDESK_NAME}: 1 added, 1 removed, 2 changed") for t in titles), titles
    assert any(t.startswith(f"{EVIL}: 3 added") for t in titles), titles
    evil = next(e for e in entries if (e.findtext(f"{ATOM}title") or "").startswith(EVIL))
    content = evil.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "text"
    assert "Evil Corp" in (content.text or "") and "Objection deadline" in (content.text or "")
    vid = _vendor_ids(site)[ZENDESK_NAME]
    own = ET.fromstring(httpx.get(f"{site}vendors/{vid}/feed.atom").content)
    assert [e.findtext(f"{ATOM}title") for e in own.findall(f"{ATOM}entry")] == [
        t for t in titles if t.startswith(ZENDESK_NAME)
    ]
    page = httpx.get(f"{site}vendors/{vid}").text
    assert (
        f'type="application/atom+xml" title="policy-watch: {ZENDESK_NAME}" href="/vendors/{vid}/feed.atom"'
        in page
    )


# --- decisions -------------------------------------------------------------------------------------------


def _form_token(client: httpx.Client, path: str) -> str:
    page = client.get(path).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the form carries a CSRF token"
    return found.group(1)


def test_post_without_its_token_is_refused(site: str, history: History) -> None:
    wid = _window_of(history, EVIL)
    before = [w["decisions"] for w in _windows(history) if w["id"] == wid]
    with httpx.Client(base_url=site) as client:
        token = _form_token(client, f"/windows/{wid}")
        no_token = client.post(f"/windows/{wid}", data={"action": "object", "note": "no token"})
        assert no_token.status_code == 403
        altered = token[:-2] + ("11" if token.endswith("00") else "00")  # never the token itself
        wrong = client.post(f"/windows/{wid}", data={"action": "object", "csrf": altered})
        assert wrong.status_code == 403
        foreign = client.post(
            f"/windows/{wid}",
            data={"action": "object", "csrf": token},
            headers={"Origin": "https://attacker.example"},
        )
        assert foreign.status_code == 403
    no_cookie = httpx.post(f"{site}windows/{wid}", data={"action": "object", "csrf": token})
    assert no_cookie.status_code == 403, "a token is only good with the cookie it was made for"
    assert [w["decisions"] for w in _windows(history) if w["id"] == wid] == before


def test_decision_from_the_page_is_in_the_history_and_deadlines_json(site: str, history: History) -> None:
    wid = _window_of(history, ZENDESK_NAME)
    note = "Snowflake: transfer <script>x</script> not covered by the DPA"
    with httpx.Client(base_url=site) as client:
        r = client.post(
            f"/windows/{wid}",
            data={"action": "object", "note": note, "csrf": _form_token(client, f"/windows/{wid}")},
        )
        assert r.status_code == 303 and r.headers["location"] == f"/windows/{wid}#history"
        client.post(f"/windows/{wid}", data={"action": "ack", "csrf": _form_token(client, f"/windows/{wid}")})
        page = client.get(f"/windows/{wid}").text
    decisions = next(w for w in _windows(history) if w["id"] == wid)["decisions"]
    assert [(d["action"], d["by"], d["note"]) for d in decisions] == [  # type: ignore[attr-defined]
        ("objected", getpass.getuser(), note),
        ("acknowledged", getpass.getuser(), None),
    ]
    history_html = page.split('id="history"')[1].split("Record a decision")[0]
    assert history_html.index("objected") < history_html.index("acknowledged")
    assert "Snowflake: transfer &lt;script&gt;x&lt;/script&gt; not covered by the DPA" in history_html
    assert "Snowflake Inc." in page.split("Changes this window covers")[1]


def test_bad_decisions_are_refused(site: str, history: History) -> None:
    wid = _window_of(history, EVIL)
    with httpx.Client(base_url=site) as client:
        token = _form_token(client, f"/windows/{wid}")
        assert client.post(f"/windows/{wid}", data={"action": "delete", "csrf": token}).status_code == 400
        assert (
            client.post(
                f"/windows/{wid}", data={"action": "object", "note": "x" * 5000, "csrf": token}
            ).status_code
            == 400
        )
        assert client.post("/windows/99999", data={"action": "object", "csrf": token}).status_code == 404
        assert client.get("/windows/99999").status_code == 404


# --- access ----------------------------------------------------------------------------------------------


def test_other_addresses_need_credentials(history: History) -> None:
    out = cli(
        history.config,
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
        env={"POLICY_WATCH_WEB_TOKEN": "", "POLICY_WATCH_WEB_USER": ""},
    )
    assert out.returncode == 2
    assert "0.0.0.0 is not a loopback address" in out.stderr and "POLICY_WATCH_WEB_TOKEN" in out.stderr


def test_loopback_refuses_other_host_names(site: str) -> None:
    assert httpx.get(site, headers={"Host": "attacker.example"}).status_code == 421
    assert httpx.get(site, headers={"Host": "localhost:1234"}).status_code == 200


def test_basic_auth_login_is_who_decides(history: History) -> None:
    env = {"POLICY_WATCH_WEB_USER": "counsel", "POLICY_WATCH_WEB_PASSWORD": "s3cret-pass"}
    wid = _window_of(history, EVIL)
    with serving(history.config, env=env) as server:
        anonymous = httpx.get(server.url)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(server.url, auth=("counsel", "wrong")).status_code == 401
        with httpx.Client(base_url=server.url, auth=("counsel", "s3cret-pass")) as client:
            assert client.get("/").status_code == 200
            token = _form_token(client, f"/windows/{wid}")
            r = client.post(f"/windows/{wid}", data={"action": "accept", "note": "fine", "csrf": token})
            assert r.status_code == 303
            body = client.get(f"/windows/{wid}").text
        assert "s3cret-pass" not in body and "s3cret-pass" not in server.banner
    last = next(w for w in _windows(history) if w["id"] == wid)["decisions"][-1]  # type: ignore[index]
    assert (last["action"], last["by"]) == ("accepted", "counsel")


def test_token_login_sets_a_signed_session(history: History) -> None:
    env = {"POLICY_WATCH_WEB_TOKEN": "tok-0123456789abcdef"}
    with serving(history.config, env=env) as server, httpx.Client(base_url=server.url) as client:
        r = client.get("/vendors")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fvendors"
        assert (
            httpx.get(server.url, headers={"Authorization": "Bearer tok-0123456789abcdef"}).status_code == 200
        )
        csrf = _form_token(client, "/login")
        bad = client.post("/login", data={"name": "Ana", "token": "nope", "csrf": csrf, "next": "/vendors"})
        assert bad.status_code == 401
        ok = client.post(
            "/login",
            data={
                "name": "Ana",
                "token": "tok-0123456789abcdef",
                "csrf": csrf,
                "next": "//attacker.example/",
            },
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        assert "tok-0123456789abcdef" not in ok.headers["set-cookie"]
        page = client.get("/")
        assert page.status_code == 200 and '<span class="user"' in page.text and ">Ana<" in page.text
        assert "tok-0123456789abcdef" not in page.text


def test_session_cookie_cannot_be_forged_or_outlive_its_day() -> None:
    access = Access(loopback=True, os_user="me", token="t")
    cookie = access.session_cookie("Ana")
    assert access.session_user(cookie) == "Ana"
    _name, expires, mac = cookie.split(".")
    forged = base64.urlsafe_b64encode(b"Boss").decode()
    assert access.session_user(f"{forged}.{expires}.{mac}") is None
    assert access.session_user(access.session_cookie("Ana", now=time.time() - 2 * 86400)) is None
    assert Access(loopback=True, os_user="me", token="t").session_user(cookie) is None, "a new key on restart"
    assert access.session_user("garbage") is None


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    with pytest.raises(Exception, match="HOST:PORT"):
        parse_address("localhost")


# --- beside the daemon -----------------------------------------------------------------------------------


def test_pages_read_while_a_run_holds_the_write_lock(site: str, history: History) -> None:
    writer = sqlite3.connect(history.db, timeout=1, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # what a run's batch holds between its commits
        writer.execute("update vendors set last_error = last_error")
        for path in ("", "vendors", "changes", "feed.atom"):
            assert httpx.get(site + path, timeout=10).status_code == 200, path
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_run_goes_on_while_the_page_is_served(site: str, history: History) -> None:
    assert httpx.get(site).status_code == 200
    out = cli(history.config, "run", "--vendor", ZENDESK_NAME)
    assert out.returncode == 0, out.stderr
    assert "1 unchanged" in out.stdout


def test_the_daemon_serves_the_page_when_configured(history: History, tmp_path: Path) -> None:
    import subprocess
    import sys

    port = free_port()
    # Half a day from now, whatever the time: the daemon neither catches up a run nor starts one.
    run_at = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    text = history.config.read_text().replace(
        "[settings]", f'[settings]\nweb = "127.0.0.1:{port}"\nrun_at = "{run_at}"', 1
    )
    config = tmp_path / "daemon.toml"
    config.write_text(text.replace('database = "pw.db"', f'database = "{history.db}"'))
    proc = subprocess.Popen(
        [sys.executable, "-m", "policy_watch", "--config", str(config), "daemon"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/vendors", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(up, timeout=60), "the daemon's review page never answered"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"review page: http://127.0.0.1:{port}/" in out and "daemon stopped" in out


def test_web_setting_is_validated(tmp_path: Path) -> None:
    from policy_watch.config import load_config
    from policy_watch.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('[settings]\nweb = "8080"\n')
    with pytest.raises(ConfigError, match=r"settings\.web: expected HOST:PORT"):
        load_config(path)


def test_reader_comes_from_the_stored_page_type() -> None:
    from policy_watch.store.reading import VendorSummary

    base = {
        "id": 1,
        "name": "x",
        "url": "https://x.example/",
        "failing": False,
        "consecutive_failures": 0,
        "last_error": None,
        "last_check": "2026-12-01T07:00:00+00:00",
        "last_success": None,
        "entries": 3,
        "suspect": False,
        "open_windows": 0,
    }
    assert VendorSummary(**base, content_type="application/pdf").reader == "PDF"  # type: ignore[arg-type]
    assert VendorSummary(**base, content_type="text/html; charset=utf-8").reader == "HTML"  # type: ignore[arg-type]
    assert VendorSummary(**base, content_type=None).reader == "—"  # type: ignore[arg-type]


def test_a_stored_pdf_is_offered_as_a_download_never_opened() -> None:
    from policy_watch.store.reading import Evidence
    from policy_watch.web.evidence import response

    found = Evidence(
        snapshot_id=7,
        vendor_id=1,
        body_hash="h",
        content_type="application/pdf",
        size=9,
        first_seen="2026-12-01T07:00:00+00:00",
    )
    r = response(found, b"%PDF-1.7 <script>")
    assert r.media_type == "application/octet-stream"
    assert r.headers["content-disposition"] == 'attachment; filename="snapshot-7.pdf"'
    assert "sandbox" in r.headers["content-security-policy"]
    latin = Evidence(7, 1, "h", "text/html; charset=iso-8859-1", 9, "2026-12-01T07:00:00+00:00")
    assert response(latin, "<p>Café</p>".encode("latin-1")).body.decode() == "<p>Café</p>"
