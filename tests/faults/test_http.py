"""HTTP faults: error statuses, bot walls, redirect trouble and empty answers from a real local server."""

from __future__ import annotations

import socket

import pytest
from faultkit import FAULTY, ROOT, World, by_vendor, head, respond

from policy_watch.fetch import Fetcher
from policy_watch.pipeline import fetch_options

CHALLENGE = b"""<!DOCTYPE html><html><head><title>Just a moment...</title></head>
<body><h1>Checking your browser before accessing the site.</h1><div id="cf-challenge">Please wait</div></body></html>"""
ACCESS_DENIED = b"""<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1>
<p>You don't have permission to access this page on this server.</p><p>Reference #18.5c2e1002</p></body></html>"""
LOGIN = b"""<!DOCTYPE html><html><head><title>Sign in</title></head><body><main><h1>Sign in to continue</h1>
<form method="post" action="/session"><label>Email <input name="email"></label>
<label>Password <input type="password" name="password"></label><button>Sign in</button></form></main></body></html>"""


@pytest.mark.parametrize(
    ("status", "cause"),
    [(404, r"HTTP 404"), (410, r"HTTP 410"), (500, r"HTTP 500"), (429, r"HTTP 429")],
)
def test_error_status(world: World, status: int, cause: str) -> None:
    world.fault(
        lambda: world.serve_faulty(respond(b"<html><body>oops</body></html>", status)),
        world.heal,
        cause=cause,
    )


def test_503_with_retry_after_is_honoured(world: World) -> None:
    world.configure("retries = 1\ntimeout = 10")  # a wait that fits the budget of 2 attempts of 10 s
    sleeps: list[float] = []

    def fetcher() -> Fetcher:
        return Fetcher(fetch_options(world.config()), sleep=sleeps.append)

    unavailable = respond(b"<html><body>maintenance</body></html>", 503, extra={"Retry-After": "7"})
    world.fault(lambda: world.serve_faulty(unavailable), world.heal, cause=r"HTTP 503", fetcher=fetcher)
    assert sleeps == [7.0], f"Retry-After not honoured: slept {sleeps}"
    assert world.raw.requests.count("/page") == 1 + 2 + 1, world.raw.requests


@pytest.mark.parametrize(
    ("status", "body"),
    [(403, CHALLENGE), (403, ACCESS_DENIED), (200, CHALLENGE)],
    ids=["403-challenge", "403-access-denied", "200-challenge"],
)
def test_bot_wall_is_blocked_not_parsed(world: World, status: int, body: bytes) -> None:
    bad = world.fault(lambda: world.serve_faulty(respond(body, status)), world.heal, cause=r"blocked")
    assert "bot challenge" in (bad.error or "")


def test_redirect_loop(world: World) -> None:
    def loop(conn: socket.socket, path: str) -> None:
        nxt = "/b" if path != "/b" else "/page"
        conn.sendall(head(302, {"Location": nxt, "Content-Length": "0"}))

    world.fault(lambda: world.serve_faulty(loop), world.heal, cause=r"redirect loop")


def test_redirect_chain_too_long(world: World) -> None:
    world.configure("max_redirects = 3")

    def chain(conn: socket.socket, path: str) -> None:
        n = int(path.rsplit("/", 1)[-1]) if path[-1].isdigit() else 0
        conn.sendall(head(301, {"Location": f"/hop/{n + 1}", "Content-Length": "0"}))

    world.fault(lambda: world.serve_faulty(chain), world.heal, cause=r"too many redirects")


def test_redirect_to_login_page_is_a_structure_alarm(world: World) -> None:
    def to_login(conn: socket.socket, path: str) -> None:
        if path.startswith("/login"):
            respond(LOGIN)(conn, path)
        else:
            conn.sendall(head(302, {"Location": "/login?next=/page", "Content-Length": "0"}))

    bad = world.fault(
        lambda: world.serve_faulty(to_login), world.heal, cause=r"structure changed", status="suspect"
    )
    assert "last good snapshot kept" in (bad.error or "")


def test_empty_body(world: World) -> None:
    world.fault(lambda: world.serve_faulty(respond(b"")), world.heal, cause=r"HTTP 200 with an empty body")


def test_whitespace_body(world: World) -> None:
    world.fault(lambda: world.serve_faulty(respond(b" \r\n\t \n")), world.heal, cause=r"empty body")


BASECAMP = ROOT / "tests" / "fixtures" / "pages" / "basecamp_2023_06_08.html"  # names hCaptcha, no <table>
RECAPTCHA_FORM = b"""<form action="/subscribe"><input name="email"><div class="g-recaptcha" data-sitekey="6Lc"></div>
<script src="https://www.google.com/recaptcha/api.js"></script><button>Subscribe to updates</button></form>"""


@pytest.mark.parametrize("variant", ["captcha-vendor", "recaptcha-widget", "challenge-script"])
def test_a_list_page_that_mentions_a_captcha_is_read(world: World, variant: str) -> None:
    """A small list page without a <table> naming a captcha vendor, carrying a reCAPTCHA widget, or
    even a challenge script: its list is read, so it is no challenge page."""
    page = BASECAMP.read_bytes().replace(b"Google Cloud Platform</a>", b"Google LLC (reCAPTCHA)</a>")
    if variant == "recaptcha-widget":
        page = page.replace(b"</main>", RECAPTCHA_FORM + b"</main>")
    if variant == "challenge-script":
        page = page.replace(
            b"</main>", b'</main><script src="/cdn-cgi/challenge-platform/scripts/jsd/main.js"></script>'
        )
    assert len(page) < 40000 and b"<table" not in page and b"captcha" in page.lower()
    world.use_page(page)
    got = by_vendor(world.run())
    assert got[FAULTY].status == "baseline" and got[FAULTY].entries == 11, got[FAULTY]


def test_a_challenge_header_on_a_page_without_a_list_is_blocked(world: World) -> None:
    """Cloudflare marks its challenge answers with ``cf-mitigated: challenge``, whatever the markup."""
    challenged = respond(LOGIN, extra={"cf-mitigated": "challenge"})
    bad = world.fault(lambda: world.serve_faulty(challenged), world.heal, cause=r"blocked: .*bot challenge")
    assert "structure" not in (bad.error or "")


def test_a_vendor_can_turn_the_challenge_guess_off(world: World) -> None:
    """``blocked = "never"``: a page without a list is an unreadable page (a structure alarm), even
    when it looks like a challenge."""
    world.baseline()
    text = world.config_path.read_text().replace(
        f'name = "{FAULTY}"', f'name = "{FAULTY}"\nblocked = "never"'
    )
    world.config_path.write_text(text)
    world.serve_faulty(respond(CHALLENGE))
    got = by_vendor(world.run())
    assert got[FAULTY].status == "suspect" and "blocked" not in (got[FAULTY].error or ""), got[FAULTY]
