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


def test_readme_fault_counts_match_the_suite() -> None:
    import re
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests" / "faults"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    classes = {
        line.split("::")[0].rsplit("/", 1)[-1].removeprefix("test_").removesuffix(".py") for line in ids
    }
    m = re.search(r"fault matrix: (\d+) classes, (\d+) cases", README)
    assert m, "README has no fault matrix line"
    assert (int(m.group(1)), int(m.group(2))) == (len(classes), len(ids))
    for cls in classes:
        assert f"- **{cls}**" in README, f"fault class {cls} is not described in README.md"
