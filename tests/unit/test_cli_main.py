"""The lazily loaded command table: ``muster --help`` lists summaries kept in
``cli/main.py`` without importing the command modules, so they must not drift
from the commands' own help, and loading must give the same command tree the
eager registration gave (a one-command group stays a group)."""

from __future__ import annotations

import pytest
from typer.core import TyperGroup
from typer.testing import CliRunner

from muster.cli.main import COMMANDS, app, load_command


def first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_summary_is_the_commands_own_first_paragraph(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert first_paragraph(command.help) == COMMANDS[name].summary


def test_groups_stay_groups_even_with_one_subcommand() -> None:
    secrets = load_command("secrets")
    assert isinstance(secrets, TyperGroup)
    assert "rotate-key" in secrets.commands


def test_help_lists_every_command_in_order() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    rows = [line.strip("│ ").split()[0] for line in result.output.splitlines() if "│" in line]
    listed = [row for row in rows if row in COMMANDS]
    assert listed == list(COMMANDS)


def test_a_subcommand_resolves_through_the_lazy_root() -> None:
    result = CliRunner().invoke(app, ["inventory", "list", "--json", "localhost"])
    assert result.exit_code == 0, result.output
    assert "localhost" in result.output


def test_unknown_command_suggests_a_close_name() -> None:
    result = CliRunner().invoke(app, ["rnu"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 2
    assert "'run'" in result.output
