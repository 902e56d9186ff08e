"""The ``muster`` command: a thin face that parses, calls the engine, presents."""

from __future__ import annotations

import typer

from muster.cli import admin_cmd, exec_cmd, inventory_cmd, login_cmd, run_cmd, script_cmd, serve_cmd

app = typer.Typer(
    name="muster",
    help="Run versioned scripts on fleets of servers, safely and fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run", help=run_cmd.HELP)(run_cmd.run)
app.add_typer(inventory_cmd.app, name="inventory")
app.add_typer(script_cmd.app, name="script")
app.add_typer(exec_cmd.app, name="exec")
app.command("serve")(serve_cmd.serve)
app.command("worker")(serve_cmd.worker)
app.command("demo")(serve_cmd.demo)
app.command("login")(login_cmd.login)
app.add_typer(admin_cmd.user_app, name="user")
app.add_typer(admin_cmd.audit_app, name="audit")
app.add_typer(login_cmd.secrets_app, name="secrets")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
