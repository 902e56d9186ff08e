"""``muster user ...``: local users and their API tokens, on the server's database.

These commands open the server's database directly (same ``MUSTER_*``
settings as ``muster serve``, or ``--data-dir`` / ``--database-url``), so
they work before any user exists and when the server is down: that is how
the first admin is made. They need no master key (nothing they touch is
sealed).

Exit codes: 0 ok; 2 bad input.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from muster.cli.common import DatabaseUrlOption, DataDirOption, fail, open_database
from muster.domain.durations import parse_duration
from muster.errors import MusterError
from muster.security.passwords import generate_password

__all__ = ["user_app"]

user_app = typer.Typer(help="Manage local users and their API tokens.", no_args_is_help=True)
#: Prints user names and roles as written: no Rich markup.
_out = Console(highlight=False, soft_wrap=True, markup=False)


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="The new user's login name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    role: Annotated[
        list[str] | None, typer.Option("--role", "-r", help="A role to give (repeatable).")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from stdin; otherwise a one-time password is printed once.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create a user. Without --password-stdin a random one-time password is printed
    once and must be changed at first login; no default password ever exists."""
    roles = list(role or [])
    if admin and "admin" not in roles:
        roles.append("admin")
    if not roles:
        raise fail("give at least one role (--admin or --role NAME)")
    store = open_database(data_dir, database_url)
    try:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            user = store.create_user(name, roles=roles, password=password)
            _out.print(f"created user {user.name} ({', '.join(user.roles)})")
            return
        password = generate_password()
        user = store.create_user(name, roles=roles, password=password, must_change_password=True)
        _out.print(f"created user {user.name} ({', '.join(user.roles)})")
        _out.print("one-time password (shown once; change it at first login):")
        print(password)
    except MusterError as exc:
        raise fail(str(exc)) from exc
    finally:
        store.close()


@user_app.command("list")
def user_list(data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None) -> None:
    """List users and their roles."""
    store = open_database(data_dir, database_url)
    try:
        table = Table("name", "roles", "status", "last login")
        for u in store.list_users():
            status = (
                "disabled"
                if u.disabled
                else ("must change password" if u.must_change_password else "active")
            )
            last = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "-"
            table.add_row(u.name, ", ".join(u.roles), status, last)
        _out.print(table)
    finally:
        store.close()


@user_app.command("token")
def user_token(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    token_name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "cli",
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime, e.g. 30d, 12h (max 366d).")] = "90d",
    role: Annotated[
        str | None, typer.Option("--role", help="Narrow the token to this role.")
    ] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Issue an API token for a user; it is printed once and stored only hashed."""
    store = open_database(data_dir, database_url)
    try:
        seconds = parse_duration(ttl, field="ttl")
        issued, info = store.create_token(
            name, token_name, ttl=dt.timedelta(seconds=seconds), role=role
        )
        _out.print(f"token {info.hint} for {name}, expires {info.expires_at:%Y-%m-%d %H:%M} UTC")
        print(issued.token.reveal())
    except MusterError as exc:
        raise fail(str(exc)) from exc
    finally:
        store.close()
