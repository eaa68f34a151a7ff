"""A secret from the environment in a vendor's URL (an access token in its query string) is used
to fetch the page and shown nowhere: not in output, alerts, errors or the database."""

from __future__ import annotations

from pathlib import Path

from pwtest import PageServer, cli, recent, write_config, zendesk_page

from policy_watch.config import hide_secrets

TOKEN = "lettersonlyvendortoken"  # no digits: it looks like no token, only its origin tells
ENV = {"PW_VENDOR_TOKEN": TOKEN}
SHOWN = "${PW_VENDOR_TOKEN}"


def test_a_token_in_a_vendor_url_is_never_shown_or_stored(tmp_path: Path, pages: PageServer) -> None:
    page = f"/list?token={TOKEN}"
    pages.serve(page, zendesk_page("v1", recent()))
    hook = pages.url("/hook").replace("http://", "json://")
    config = write_config(tmp_path, [("Tokened", pages.url("/list?token=${PW_VENDOR_TOKEN}"))], [hook])
    outputs = [cli(config, "run", env=ENV)]
    assert outputs[0].returncode == 0, outputs[0].stderr
    assert any(f"token={TOKEN}" in path for method, path, _ in pages.requests if method == "GET"), (
        "not fetched"
    )

    pages.serve(page, b"", status=302, Location=f"/moved?token={TOKEN}")  # a redirect keeps the token
    pages.serve(f"/moved?token={TOKEN}", zendesk_page("v2", recent()))  # and a real change
    outputs.append(cli(config, "-v", "run", "--json", env=ENV))
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    pages.serve(f"/moved?token={TOKEN}", b"<html><body>down</body></html>", status=500)  # and a failure
    outputs.append(cli(config, "-v", "run", env=ENV))
    assert outputs[-1].returncode == 1 and f"/list?token={SHOWN}" in outputs[-1].stderr, outputs[-1].stderr
    for args in (
        ("outbox", "--all", "--json"),
        ("changes", "--json"),
        ("deadlines", "--json"),
        ("show", "Tokened"),
        ("history", "Tokened"),
        ("export", "--format", "csv"),
    ):
        outputs.append(cli(config, *args, env=ENV))
        assert outputs[-1].returncode == 0, (args, outputs[-1].stderr)

    alerts = [p for p in pages.posts if p.get("title", "").startswith("Tokened")]
    assert alerts and all(SHOWN in p["message"] for p in alerts), alerts
    for out in outputs:
        assert TOKEN not in out.stdout and TOKEN not in out.stderr, f"token shown: {out.stdout} {out.stderr}"
    assert all(TOKEN not in str(p) for p in pages.posts), "token sent in an alert"
    for f in tmp_path.glob("pw.db*"):
        assert TOKEN.encode() not in f.read_bytes(), f"token stored in {f.name}"


def test_hide_secrets_replaces_each_form_of_a_value() -> None:
    secrets = [("a b/c+d", "${A}"), ("abc", "${SHORT}"), ("tok3n-value", "${T}")]
    text = "x?k=a%20b%2Fc%2Bd&m=a+b%2Fc%2Bd&n=a b/c+d&t=tok3n-value&s=abc"
    assert hide_secrets(text, secrets) == "x?k=${A}&m=${A}&n=${A}&t=${T}&s=abc"  # 3 letters: not looked for


def test_letters_only_secrets_in_the_path_of_an_unrecognised_notify_url_are_hidden() -> None:
    from policy_watch import notify

    url = "unknownservice://hooks.example.com/team/lettersonlysecret/x"
    shown = notify.redact(url)
    assert (
        "lettersonlysecret" not in shown
        and "team" not in shown
        and shown.startswith("unknownservice://hooks.example.com/")
    ), shown
    assert "lettersonlysecret" not in notify.scrub(f"could not post to {url}: lettersonlysecret refused", url)
