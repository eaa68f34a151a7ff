"""Content faults: oversized and compressed bodies, wrong types and charsets, broken or alien markup."""

from __future__ import annotations

import gzip
import json
import socket
import sqlite3
import time
import zlib
from collections.abc import Callable

import pdfmake
import pytest
from faultkit import FAULTY, V1, V2, V3, World, by_vendor, chunks, db_state, head, respond

from policy_watch.parse import parse_page
from policy_watch.parse.pdf import MAX_PAGES

MB = 1024 * 1024
CAP = 2 * MB


def _table_page(
    rows: list[tuple[str, str, str]],
    *,
    title: str = "Subprocessors",
    charset: str | None = "utf-8",
    style: str = "plain",
) -> str:
    meta = f'<meta charset="{charset}">' if charset else ""
    if style == "plain":
        body = "".join(f"<tr><td>{e}</td><td>{p}</td><td>{c}</td></tr>" for e, p, c in rows)
        table = f"<table><tr><th>Entity Name</th><th>Purpose</th><th>Country</th></tr>{body}</table>"
        return f"<!DOCTYPE html><html><head>{meta}<title>{title}</title></head><body><h2>{title}</h2>{table}</body></html>"
    body = "\n".join(
        f'  <tr class="row">\n    <td class="c">\n      <span>{e}</span>\n    </td>\n'
        f"    <td>{p}</td>\n    <td><em>{c}</em></td>\n  </tr>"
        for e, p, c in rows
    )
    table = (
        f'<div class="wrap"><table class="subprocessors"><thead><tr><th>Entity Name</th><th>Purpose</th>'
        f"<th>Country</th></tr></thead>\n<tbody>\n{body}\n</tbody></table></div>"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head>{meta}<title>{title}</title><script>var x=1;</script></head>'
        f'<body><nav><a href="/">Home</a></nav><main><section><h2 id="s">{title}</h2>{table}</section></main>'
        f"<footer>© 2031</footer></body></html>"
    )


ACCENTED = [
    ("Café Müller GmbH", "Hosting – storage", "Deutschland"),
    ("Société Générale", "Payments", "France"),
    ("Zürich Data AG", "Backups", "Schweiz"),
    ("Ångström Analytics AB", "Analytics", "Sverige"),
]


# --- size ------------------------------------------------------------------------------------------------


def _memory_check(world: World, fault_body: object) -> None:
    """Peak memory of a real `policy-watch run` under the fault stays close to a healthy run's."""
    world.heal()
    healthy = world.cli("run")
    assert healthy.code == 0, healthy.err
    world.serve_faulty(fault_body)  # type: ignore[arg-type]
    broken = world.cli("run")
    assert broken.code == 1, broken.err
    assert FAULTY in broken.err and "too large" in broken.err, broken.err
    growth_mb = (broken.max_rss_kb - healthy.max_rss_kb) / 1024
    assert growth_mb < 25, (
        f"peak memory grew by {growth_mb:.0f} MB (healthy run {healthy.max_rss_kb // 1024} MB)"
    )


def _big(declared: bool) -> object:
    piece = b"<tr><td>" + b"x" * 65000 + b"</td></tr>"

    def go(conn: socket.socket, path: str) -> None:
        total = 50 * MB
        if declared:
            conn.sendall(head(200, {"Content-Type": "text/html", "Content-Length": str(total)}))
            for c in chunks(total, piece):
                conn.sendall(c)
        else:
            conn.sendall(head(200, {"Content-Type": "text/html", "Transfer-Encoding": "chunked"}))
            for c in chunks(total, piece):
                conn.sendall(b"%x\r\n%s\r\n" % (len(c), c))
            conn.sendall(b"0\r\n\r\n")

    return go


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_50_mb_body(world: World, declared: bool) -> None:
    world.configure(f"max_bytes = {CAP}")
    world.fault(lambda: world.serve_faulty(_big(declared)), world.heal, cause=r"response too large")  # type: ignore[arg-type]
    _memory_check(world, _big(declared))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * MB
    data = b"".join(z.compress(zeros) for _ in range(200)) + z.flush()
    assert len(data) < 300_000
    return data


def test_gzip_bomb(world: World, bomb: bytes) -> None:
    world.configure(f"max_bytes = {CAP}")
    serve = respond(bomb, ctype="text/html", extra={"Content-Encoding": "gzip"})
    world.fault(lambda: world.serve_faulty(serve), world.heal, cause=r"response too large")
    _memory_check(world, serve)


def test_gzip_page_still_read(world: World) -> None:
    """The bounded decoder reads an ordinary compressed page like the plain one."""
    world.fault(
        lambda: world.serve_faulty(respond(gzip.compress(V1), extra={"Content-Encoding": "gzip"})),
        world.heal,
        status="unchanged",
    )


def test_broken_gzip(world: World) -> None:
    corrupt = respond(gzip.compress(V1)[:50] + b"\xff" * 200, extra={"Content-Encoding": "gzip"})
    world.fault(lambda: world.serve_faulty(corrupt), world.heal, cause=r"broken gzip body|decod")


# --- type and charset ----------------------------------------------------------------------------------------


def test_json_instead_of_html(world: World) -> None:
    body = json.dumps({"subprocessors": [{"name": "Acme"}]}).encode()
    world.fault(
        lambda: world.serve_faulty(respond(body, ctype="application/json")),
        world.heal,
        cause=r"not an HTML page or PDF.*application/json",
    )


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (
            lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n",
            r"not a readable PDF",
        ),
        (pdfmake.scanned, r"no text layer"),
        (lambda: pdfmake.many_pages(MAX_PAGES + 1), r"pages \(limit"),
        (pdfmake.stream_bomb, r"unpacks to over"),
    ],
    ids=["broken-pdf", "scanned-pdf", "pdf-bomb-pages", "pdf-bomb-stream"],
)
def test_unreadable_pdf_instead_of_the_page(world: World, make: Callable[[], bytes], cause: str) -> None:
    """A PDF that cannot be read where the list was: a structure alarm naming why, no removals."""
    body = make()
    world.fault(
        lambda: world.serve_faulty(respond(body, ctype="application/pdf")),
        world.heal,
        cause=cause,
        status="suspect",
    )


def test_json_labelled_as_html_is_a_structure_alarm(world: World) -> None:
    body = json.dumps({"subprocessors": [{"name": "Acme", "country": "US"}]}).encode()
    world.fault(
        lambda: world.serve_faulty(respond(body)), world.heal, cause=r"structure changed", status="suspect"
    )


@pytest.mark.parametrize(
    ("ctype", "meta"),
    [("text/html; charset=utf-8", None), ("text/html", None), ("text/html", "utf-8")],
    ids=["windows-1252-declared-utf8-header", "undeclared", "windows-1252-declared-utf8-meta"],
)
def test_wrong_or_missing_charset(world: World, ctype: str, meta: str | None) -> None:
    rows = ACCENTED + [(f"Plain Vendor {i} Inc.", "Hosting", "US") for i in range(8)]
    world.use_page(_table_page(rows).encode("utf-8"))
    cp1252 = _table_page(rows, charset=meta).encode("cp1252")
    world.fault(lambda: world.serve_faulty(respond(cp1252, ctype=ctype)), world.heal, status="unchanged")
    shown = world.cli("show", FAULTY, "--json")
    assert "Café Müller GmbH" in json.loads(shown.out)["entries"][0]["entity"], shown.out


# --- markup --------------------------------------------------------------------------------------------------


def test_badly_broken_html_same_data(world: World) -> None:
    broken = V1
    for tag in (b"</td>", b"</tr>", b"</p>", b"</li>", b"</div>", b"</span>"):
        broken = broken.replace(tag, b"")
    broken = (
        broken.replace(b"<table", b"</i></b><<>><table", 1)
        .replace(b"</body>", b"<div><p><span>")
        .replace(b"</html>", b"")
    )
    world.fault(lambda: world.serve_faulty(respond(broken)), world.heal, status="unchanged")


def test_only_unrelated_tables_is_a_structure_alarm(world: World) -> None:
    cookies = (
        "<h2>Cookies we use</h2><table><tr><th>Cookie</th><th>Duration</th><th>Description</th></tr>"
        "<tr><td>_ga</td><td>2 years</td><td>Google Analytics</td></tr>"
        "<tr><td>session_id</td><td>Session</td><td>Keeps you signed in</td></tr></table>"
    )
    pricing = (
        "<h2>Pricing</h2><table><tr><th>Plan</th><th>Price</th><th>Seats</th></tr>"
        "<tr><td>Team</td><td>$19</td><td>5</td></tr><tr><td>Enterprise</td><td>Contact us</td>"
        "<td>Unlimited</td></tr></table>"
    )
    page = f"<html><head><title>Legal</title></head><body>{cookies}{pricing}</body></html>".encode()
    bad = world.fault(
        lambda: world.serve_faulty(respond(page)), world.heal, cause=r"structure changed", status="suspect"
    )
    assert "no subprocessor" in (bad.error or ""), bad.error


def test_redesigned_layout_same_data(world: World) -> None:
    rows = [(f"Vendor {i} Ltd", f"Purpose {i}", "Ireland") for i in range(30)]
    world.use_page(_table_page(rows).encode())
    redesigned = _table_page(rows, style="redesigned").encode()
    assert parse_page(redesigned).entries == parse_page(_table_page(rows).encode()).entries
    world.fault(lambda: world.serve_faulty(respond(redesigned)), world.heal, status="unchanged")


def test_zendesk_cosmetic_redesign(world: World) -> None:
    world.use_page(V2)
    world.fault(lambda: world.serve_faulty(respond(V3)), world.heal, status="unchanged")


def test_twenty_thousand_rows(world: World) -> None:
    rows = [
        (f"Subprocessor {i:05d} Inc.", f"Processing of kind {i % 37}", ["US", "DE", "IE"][i % 3])
        for i in range(20_000)
    ]
    world.use_page(_table_page(rows).encode())
    cpu = time.process_time()  # this process's own work, whatever else the machine is doing
    world.fault(
        lambda: world.serve_faulty(respond(_table_page(rows, style="redesigned").encode())),
        world.heal,
        status="unchanged",
    )
    seconds = time.process_time() - cpu
    snaps = db_state(world.db).snapshots
    assert [s[4] for s in snaps.values() if s[0] == FAULTY] == [20_000]
    # Not a speed target (benchmarks/bench_scale.py measures those): work that grew with the
    # square of the rows would take minutes here.
    assert seconds < 20, f"three runs over 20,000 rows took {seconds:.1f} s of CPU"


# --- hostile text ----------------------------------------------------------------------------------------------

HOSTILE = [
    (
        "&lt;script&gt;alert(1)&lt;/script&gt;Evil <script>steal()</script>Corp",
        "<!channel> hosting <@U123>",
        "US",
    ),
    ("Mention Co <!here> <@U0ABCDEF>", "Payments \u202eevil\u202c \u200f" + "\x07\x1b[31m", "<!everyone>"),
    ("Big Cell Ltd", "A" * 100_000, "DE"),
]


RAW = ("<!channel>", "<!here>", "<!everyone>", "<@U123>", "<@U0ABCDEF>", "<script", "\u202e", "\x07", "\x1b")


def _hostile_alert(world: World) -> dict[str, str]:
    """Add three hostile rows to a page; return the alert as queued (per format) and as the webhook got it."""
    base = [("Safe One Inc.", "Hosting", "US"), ("Safe Two Ltd", "Email", "IE")]
    world.use_page(_table_page(base).encode())
    world.baseline()
    posts = len(world.pages.posts)
    world.serve_faulty(respond(_table_page(base + HOSTILE).encode()))
    got = by_vendor(world.run())[FAULTY]
    assert got.status == "changed", got
    assert sorted(c.kind.value for c in got.changes) == ["added"] * 3, got.changes
    new_posts = world.pages.posts[posts:]
    assert len(new_posts) == 1, new_posts
    with sqlite3.connect(world.db) as conn:
        row = conn.execute(
            "select body_markdown, body_text, body_html from outbox where kind = 'changes'"
        ).fetchone()
    post = new_posts[0]
    return {
        "webhook": f"{post['title']}\n{post['message']}",
        "markdown": row[0],
        "text": row[1],
        "html": row[2],
    }


def _raw_in(text: str) -> list[str]:
    return [bad for bad in RAW if bad in text]


def test_hostile_cell_text_markdown_and_html(world: World) -> None:
    alert = _hostile_alert(world)
    assert not _raw_in(alert["markdown"]), _raw_in(alert["markdown"])
    assert not _raw_in(alert["html"]), _raw_in(alert["html"])
    assert len(alert["markdown"]) < 20_000 and len(alert["html"]) < 20_000, "a 100 KB cell reached the alert"
    assert "Evil" in alert["markdown"] and "Big Cell Ltd" in alert["markdown"]


def test_hostile_cell_text_webhook(world: World) -> None:
    alert = _hostile_alert(world)
    assert len(alert["webhook"]) < 20_000, "a 100 KB cell reached the webhook"
    assert "Evil" in alert["webhook"] and "Big Cell Ltd" in alert["webhook"]
    assert not _raw_in(alert["webhook"]), f"raw page text reached the webhook: {_raw_in(alert['webhook'])}"
