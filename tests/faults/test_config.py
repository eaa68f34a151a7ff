"""Bad input at the edge: each invalid config and command line gets exit 2 and a message naming the problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from faultkit import FAULTY, CliResult, World, db_state

from policy_watch.cli import cli


def run_cli(config: Path, *args: str) -> CliResult:
    """The real command line, in this process (the subprocess runs are in the other fault classes)."""
    r = CliRunner().invoke(cli, ["--config", str(config), *args], env={"COLUMNS": "200"})
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return CliResult(r.exit_code, r.stdout, r.stderr, 0, 0.0)


GOOD = """[settings]
database = "pw.db"

[[vendors]]
name = "Acme"
url = "http://127.0.0.1:9/page"
"""

CASES = {
    "toml-syntax": (GOOD + "\n[[vendors]]\nname = \"Broken\nurl = 'x'\n", [r"TOML syntax error", r"line 9"]),
    "unknown-key": (
        GOOD.replace("[settings]", "[settings]\ntimeuot = 5"),
        [r"settings\.timeuot", r"unknown key"],
    ),
    "wrong-type": (
        GOOD.replace("[settings]", '[settings]\ntimeout = "fast"'),
        [r"settings\.timeout", r"a number"],
    ),
    "duplicate-vendor": (
        GOOD + '\n[[vendors]]\nname = "acme"\nurl = "http://127.0.0.1:9/other"\n',
        [r"vendors\[2\]\.name", r"duplicate vendor"],
    ),
    "unset-env": (
        GOOD + '\n[[notify]]\nurl = "json://127.0.0.1:9/${PW_FAULTS_UNSET_TOKEN}"\n',
        [r"notify\[1\]\.url", r"PW_FAULTS_UNSET_TOKEN", r"not set"],
    ),
    "negative-timeout": (GOOD.replace("[settings]", "[settings]\ntimeout = -1"), [r"settings\.timeout"]),
    "vendor-not-a-table": ('vendors = ["Acme"]\n', [r"vendors\[1\]", r"expected a table"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_config(tmp_path: Path, case: str) -> None:
    text, patterns = CASES[case]
    config = tmp_path / "config.toml"
    config.write_text(text)
    r = run_cli(config, "run")
    assert r.code == 2, f"exit {r.code}: {r.err}"
    assert str(config) in r.err, r.err
    for pattern in patterns:
        assert re.search(pattern, r.err), f"{pattern!r} not in: {r.err}"
    assert "Traceback" not in r.err
    assert not (tmp_path / "pw.db").exists(), "a database was created from a bad config"


def test_missing_config_file(tmp_path: Path) -> None:
    r = run_cli(tmp_path / "nope.toml", "run")
    assert r.code == 2 and str(tmp_path / "nope.toml") in r.err and "not found" in r.err, r.err


@pytest.mark.parametrize(
    "args",
    [("frobnicate",), ("run", "--frobnicate"), ("changes", "--since", "yesterday"), ("--nope",)],
    ids=["unknown-command", "unknown-option", "bad-date", "unknown-global-option"],
)
def test_bad_command_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(GOOD)
    r = run_cli(config, *args)
    assert r.code == 2, f"exit {r.code}: {r.err}"
    assert "Error" in r.err and "Traceback" not in r.err, r.err


@pytest.mark.parametrize(
    "args",
    [("run", "--vendor", "Nope"), ("show", "Nope"), ("history", "Nope"), ("changes", "--vendor", "Nope")],
)
def test_unknown_vendor(world: World, args: tuple[str, ...]) -> None:
    before = world.baseline()
    r = run_cli(world.config_path, *args)
    assert r.code != 0, r.out
    assert "'Nope'" in r.err and "no vendor named" in r.err and "Traceback" not in r.err, r.err
    assert FAULTY in r.err, f"the known vendors are not listed: {r.err}"
    assert db_state(world.db) == before
