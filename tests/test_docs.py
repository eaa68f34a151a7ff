"""Docs that cannot drift: every command has help and appears in the README."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pwtest import ROOT

from policy_watch.cli import cli

README = (ROOT / "README.md").read_text()
COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_and_is_documented(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert (cli.commands[name].help or "").strip(), f"{name} has no help text"
    assert f"policy-watch {name}" in README or f"`{name}" in README, f"{name} is not in README.md"


def test_readme_starts_with_the_two_commands() -> None:
    head = README.split("\n## ", 1)[0]
    assert "policy-watch demo" in head
    assert "pytest" in head or ".ci/run" in head


def test_unknown_command_and_option_exit_2() -> None:
    assert CliRunner().invoke(cli, ["frobnicate"]).exit_code == 2
    assert CliRunner().invoke(cli, ["run", "--frob"]).exit_code == 2
