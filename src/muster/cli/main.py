"""The ``muster`` command: a thin face that parses, calls the engine, presents.

Every invocation pays for what it imports, and on a fleet run start-up is most
of the controller's CPU. So no command module is imported until its command is
resolved: ``muster --help`` lists :data:`COMMANDS` from the one-line summaries
kept here, and ``muster run`` never loads the server, the store or (for local
hosts) asyncssh. tests/unit/test_cli_main.py keeps the summaries equal to the
commands' own help; tests/e2e/test_cli_startup.py checks what each path loads.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    # Typer vendors Click; its groups are typed with these.
    from typer._click import Command, Context

__all__ = ["COMMANDS", "LazyCommand", "app", "load_command", "main"]


@dataclass(frozen=True, slots=True)
class LazyCommand:
    #: ``module:attribute`` naming a Typer app (a command group) or a command function.
    target: str
    #: The first paragraph of the command's help, for the listing.
    summary: str


#: Every command, in the order ``muster --help`` lists them.
COMMANDS: dict[str, LazyCommand] = {
    "run": LazyCommand(
        "muster.cli.run_cmd:run",
        "Run a command (after --) or a script (--script) on the hosts SELECTOR picks.",
    ),
    "serve": LazyCommand(
        "muster.cli.serve_cmd:serve",
        "Start the API, one embedded worker and the reaper (SQLite by default).",
    ),
    "worker": LazyCommand(
        "muster.cli.worker_cmd:worker",
        "Run one more worker against the server's database (PostgreSQL for several hosts).",
    ),
    "scheduler": LazyCommand(
        "muster.cli.scheduler_cmd:scheduler",
        "Run one scheduler against the server's database (one of several leads).",
    ),
    "schedule": LazyCommand(
        "muster.cli.schedule_cmd:app", "Add, list, pause, resume and run schedules."
    ),
    "demo": LazyCommand(
        "muster.cli.serve_cmd:demo",
        "Serve plus a simulated SSH fleet (groups web, db, cache) and sample scripts.",
    ),
    "login": LazyCommand(
        "muster.cli.login_cmd:login",
        "Log in, create an API token and save it (0600) for the other commands.",
    ),
    "inventory": LazyCommand("muster.cli.inventory_cmd:app", "Inspect inventories and selectors."),
    "script": LazyCommand("muster.cli.script_cmd:app", "Manage the server's script library."),
    "exec": LazyCommand("muster.cli.exec_cmd:app", "Start, follow, cancel and retry executions."),
    "workflow": LazyCommand("muster.cli.workflow_cmd:app", "Run, preview and manage workflows."),
    "rollout": LazyCommand(
        "muster.cli.rollout_cmd:app",
        "Publish rollout reports to the server and read them back.",
    ),
    "approval": LazyCommand("muster.cli.approval_cmd:app", "List and decide approval requests."),
    "window": LazyCommand(
        "muster.cli.window_cmd:window_app", "Maintenance windows: when hosts may start runs."
    ),
    "user": LazyCommand("muster.cli.user_cmd:user_app", "Manage local users and their API tokens."),
    "audit": LazyCommand("muster.cli.audit_cmd:audit_app", "Query and verify the audit log."),
    "secrets": LazyCommand(
        "muster.cli.secrets_cmd:secrets_app", "The master key that seals stored secrets."
    ),
}


def load_command(name: str) -> Command:
    """Import the command's module and build it exactly as a root ``add_typer`` /
    ``command`` registration would (a one-command app stays a group)."""
    module_name, _, attribute = COMMANDS[name].target.partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    holder = typer.Typer()
    holder.callback()(_no_options)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


def _no_options() -> None:
    pass


class _Placeholder(TyperCommand):
    """A command's name and summary, listed without importing its module."""


class LazyGroup(TyperGroup):
    """The root group: placeholders for listing, replaced by the real command once
    a name is resolved (to run it or to print its own help)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, lazy in COMMANDS.items():
            self.commands.setdefault(name, _Placeholder(name=name, help=lazy.summary))

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, _Placeholder):
            command = self.commands[name] = load_command(name)
        return name, command, rest


app = typer.Typer(
    name="muster",
    cls=LazyGroup,
    help="Run versioned scripts on fleets of servers, safely and fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.callback()(_no_options)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
