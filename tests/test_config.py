"""Config validation: each bad input gives one clear message naming the file and key, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from pwtest import ROOT, cli

from policy_watch.config import load_config
from policy_watch.errors import ConfigError

GOOD = """
[settings]
database = "data/pw.db"
objection_days = 30

[[vendors]]
name = "Acme"
url = "https://acme.example/subprocessors"

[[notify]]
url = "json://127.0.0.1:9/hook"
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


CASES = [
    ("missing", None, "config file not found"),
    ("syntax", "[settings]\nobjection_days = = 3\n", "line 2"),
    ("unknown key", GOOD.replace("objection_days = 30", "objection_dayz = 30"), "settings.objection_dayz"),
    ("wrong type", GOOD.replace("objection_days = 30", 'objection_days = "30"'), "settings.objection_days"),
    (
        "duplicate vendor",
        GOOD + '\n[[vendors]]\nname = "acme"\nurl = "https://b.example/"\n',
        "vendors[2].name",
    ),
    ("bad url", GOOD.replace("https://acme.example/subprocessors", "ftp://acme.example/"), "vendors[1].url"),
    ("negative days", GOOD.replace("objection_days = 30", "objection_days = -1"), "settings.objection_days"),
    ("vendor key", GOOD.replace('name = "Acme"', 'name = "Acme"\ncolour = "red"'), "vendors[1].colour"),
    ("notify filter", GOOD + 'vendors = ["Nobody"]\n', "notify[1].vendors"),
    ("bad kind", GOOD + 'kinds = ["exploded"]\n', "notify[1].kinds"),
    ("bad time", GOOD.replace("objection_days = 30", 'run_at = "25:00"'), "settings.run_at"),
    ("bad zone", GOOD.replace("objection_days = 30", 'timezone = "Mars/Base"'), "settings.timezone"),
    (
        "render mode",
        GOOD.replace('name = "Acme"', 'name = "Acme"\nrender = "chrome"'),
        'vendors[1].render: expected "browser"',
    ),
    (
        "empty follow",
        GOOD.replace('name = "Acme"', 'name = "Acme"\nfollow = " "'),
        "vendors[1].follow: must be",
    ),
    (
        "follow and render",
        GOOD.replace('name = "Acme"', 'name = "Acme"\nfollow = "PDF"\nrender = "browser"'),
        "vendors[1].follow: cannot be used with",
    ),
    (
        "follow a file",
        GOOD.replace("https://acme.example/subprocessors", "page.html").replace(
            'name = "Acme"', 'name = "Acme"\nfollow = "PDF"'
        ),
        "vendors[1].follow: needs an http(s) URL",
    ),
    (
        "browser pages",
        GOOD.replace("objection_days = 30", "browser_pages = 0"),
        "settings.browser_pages: must be between 1 and 64",
    ),
    ("browser empty", GOOD.replace("objection_days = 30", 'browser = ""'), "settings.browser: must name"),
]


@pytest.mark.parametrize(("label", "text", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_config_names_file_and_key(tmp_path: Path, label: str, text: str | None, needle: str) -> None:
    path = tmp_path / "config.toml" if text is None else _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize(("label", "text", "needle"), CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_bad_config_cli_exit_2_and_nothing_written(
    tmp_path: Path, label: str, text: str | None, needle: str
) -> None:
    path = tmp_path / "config.toml" if text is None else _write(tmp_path, text)
    out = cli(path, "run")
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr and str(path) in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, "one clear message, no traceback"
    assert not (tmp_path / "data").exists(), "nothing is written"


UNSET = GOOD.replace("json://127.0.0.1:9/hook", "json://${PW_TEST_UNSET_TOKEN}@h/x")


def test_unset_notify_secret_is_an_error_only_when_sending(tmp_path: Path) -> None:
    path = _write(tmp_path, UNSET)
    cfg = load_config(path)  # reading the database needs no alert secret
    assert cfg.notify[0].unset == ("PW_TEST_UNSET_TOKEN",) and "PW_TEST" in cfg.notify[0].url
    with pytest.raises(ConfigError) as info:
        cfg.require_notify()
    assert str(path) in str(info.value) and "notify[1].url" in str(info.value)
    assert "${PW_TEST_UNSET_TOKEN} is not set" in str(info.value)


@pytest.mark.parametrize("command", ["run", "notify-test", "daemon"])
def test_sending_commands_refuse_an_unset_notify_secret(tmp_path: Path, command: str) -> None:
    path = _write(tmp_path, UNSET)
    out = cli(path, command, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "notify[1].url" in out.stderr and "${PW_TEST_UNSET_TOKEN} is not set" in out.stderr, out.stderr
    assert str(path) in out.stderr
    assert not (tmp_path / "data").exists(), "nothing is written"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("objection_days", "1000000000"),
        ("objection_days", "0"),
        ("timeout", "inf"),
        ("timeout", "nan"),
        ("timeout", "1e300"),
        ("max_bytes", "9223372036854775807"),
        ("concurrency", "100000000"),
        ("retries", "1000000"),
        ("alert_retry_minutes", "100000000000"),
        ("guard_ratio", "nan"),
        ("reminder_days", "[7, 100000000]"),
        ("failure_threshold", "9223372036854775807"),
        ("max_redirects", "-1"),
        ("per_host", "0"),
    ],
)
def test_numbers_out_of_range_are_refused_at_load(tmp_path: Path, setting: str, value: str) -> None:
    path = _write(tmp_path, GOOD.replace("objection_days = 30", f"{setting} = {value}"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and f"settings.{setting}: must be between" in str(info.value)


def test_vendor_objection_days_out_of_range_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace('name = "Acme"', 'name = "Acme"\nobjection_days = 1000000000'))
    with pytest.raises(ConfigError, match=r"vendors\[1\]\.objection_days: must be between 1 and 3650 days"):
        load_config(path)


def test_good_config_resolves_paths_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_HOOK_TOKEN", "s3cr3t")
    cfg = load_config(
        _write(tmp_path, GOOD.replace("127.0.0.1:9/hook", "u:${PW_HOOK_TOKEN}@127.0.0.1:9/hook"))
    )
    assert cfg.settings.database == tmp_path.resolve() / "data" / "pw.db"
    assert cfg.vendors[0].objection_days == 30
    assert cfg.notify[0].url == "json://u:s3cr3t@127.0.0.1:9/hook"


def test_vendor_override_and_local_file(tmp_path: Path) -> None:
    text = GOOD.replace(
        'url = "https://acme.example/subprocessors"',
        'url = "pages/acme.html"\nobjection_days = 14\n[vendors.parse]\nrow = "li"\nentity = "b"',
    )
    cfg = load_config(_write(tmp_path, text))
    v = cfg.vendors[0]
    assert v.objection_days == 14 and v.is_file and v.url == str(tmp_path.resolve() / "pages" / "acme.html")
    assert v.rules is not None and v.rules.row == "li" and v.rules.entity == "b"


def test_source_keys(tmp_path: Path) -> None:
    text = (
        GOOD.replace('name = "Acme"', 'name = "Acme"\nrender = "browser"').replace(
            "objection_days = 30", 'browser = "~/chromium/chrome"\nbrowser_pages = 2'
        )
        + '\n[[vendors]]\nname = "B"\nurl = "https://b.example/trust"\nfollow = " Sub-processors "\n'
    )
    cfg = load_config(_write(tmp_path, text))
    assert cfg.vendors[0].render == "browser" and cfg.vendors[1].follow == "Sub-processors"
    assert (
        cfg.settings.browser == str(Path.home() / "chromium" / "chrome") and cfg.settings.browser_pages == 2
    )


def test_shipped_config_loads() -> None:
    cfg = load_config(ROOT / "config.toml")
    assert cfg.vendors[0].name == "Zendesk Connect"
    assert cfg.vendors[0].url.startswith("https://www.zendesk.com/")


def test_error_text_with_markup_characters_is_printed_as_is(tmp_path: Path) -> None:
    text = (
        GOOD
        + '\n[[vendors]]\nname = "[/red] acme"\nurl = "https://b.example/"\n[[vendors]]\nname = "[/red] ACME"\nurl = "https://c.example/"\n'
    )
    out = cli(_write(tmp_path, text), "run")
    assert out.returncode == 2
    assert "duplicate vendor name '[/red] ACME'" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_old_processes_setting_still_loads_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    p = tmp_path / "config.toml"
    p.write_text(GOOD.replace("objection_days = 30", "processes = 2"))
    with caplog.at_level("WARNING", logger="policy_watch.config"):
        cfg = load_config(p)
    assert cfg.vendors
    assert "settings.processes is no longer used" in caplog.text and str(p) in caplog.text
