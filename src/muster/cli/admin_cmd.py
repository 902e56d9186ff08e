"""Server-side administration: ``muster user ...`` and ``muster audit ...``.

These commands open the server's database directly (same ``MUSTER_*``
settings as ``muster serve``, or ``--data-dir`` / ``--database-url``), so
they work before any user exists and when the server is down: that is how
the first admin is made and how an operator checks the audit chain without
trusting the process that wrote it.

Exit codes: 0 ok; 1 the audit chain is broken; 2 bad input.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from muster.cli.common import fail
from muster.config import Settings
from muster.domain.durations import parse_duration
from muster.errors import MusterError
from muster.security.passwords import generate_password
from muster.store.security_ops import SecurityStore, open_security_store

__all__ = ["EXIT_CHAIN_BROKEN", "audit_app", "user_app"]

EXIT_CHAIN_BROKEN = 1

user_app = typer.Typer(help="Manage local users and their API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="Query and verify the audit log.", no_args_is_help=True)
_out = Console(highlight=False, soft_wrap=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="The server's data directory (MUSTER_DATA_DIR).")
]
DbUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="The server's database (MUSTER_DATABASE_URL)."),
]


def _store(data_dir: Path | None, database_url: str | None) -> SecurityStore:
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    try:
        return open_security_store(Settings(**overrides))  # type: ignore[arg-type]
    except Exception as exc:  # configuration or connection: say what, not a traceback
        raise fail(f"cannot open the database: {exc}") from exc


# --- users -------------------------------------------------------------------


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
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create a user. Without --password-stdin a random one-time password is printed
    once and must be changed at first login; no default password ever exists."""
    roles = list(role or [])
    if admin and "admin" not in roles:
        roles.append("admin")
    if not roles:
        raise fail("give at least one role (--admin or --role NAME)")
    store = _store(data_dir, database_url)
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
def user_list(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """List users and their roles."""
    store = _store(data_dir, database_url)
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
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Issue an API token for a user; it is printed once and stored only hashed."""
    store = _store(data_dir, database_url)
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


# --- audit -------------------------------------------------------------------


def _parse_anchor(anchor: str | None) -> tuple[int, str] | None:
    if anchor is None:
        return None
    seq, sep, digest = anchor.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64:
        raise fail("--anchor must be SEQ:HASH as printed by a previous verify")
    return int(seq), digest


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="SEQ:HASH from an earlier verify; also catches removal of the newest records.",
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Recompute the audit hash chain; exit 1 at the first edited, removed or reordered record."""
    expect = _parse_anchor(anchor)
    store = _store(data_dir, database_url)
    try:
        result = store.verify_audit(expect_head=expect)
    finally:
        store.close()
    if not result.ok:
        _out.print(
            f"[bold red]audit chain broken[/] at seq {result.first_bad_seq}: {result.problem} "
            f"({result.checked} records before it are intact)"
        )
        raise typer.Exit(EXIT_CHAIN_BROKEN)
    head = f"{result.head[0]}:{result.head[1]}" if result.head else "empty"
    _out.print(f"audit chain ok: {result.checked} records; anchor {head}")


def _when(text: str | None, field: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"{field}: {text!r} is not an ISO date/time (e.g. 2026-01-31T12:00)") from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


@audit_app.command("list")
def audit_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this actor.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Action, or prefix ending in * (script.*).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO time, inclusive (UTC if no zone).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO time, exclusive.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Audit records, newest first."""
    store = _store(data_dir, database_url)
    try:
        page = store.list_audit(
            actor=user,
            action=action,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
            limit=limit,
        )
    finally:
        store.close()
    if as_json:
        for r in page.items:
            print(
                json.dumps(
                    {
                        "seq": r.seq,
                        "at": r.at.isoformat(),
                        "actor": r.actor,
                        "action": r.action,
                        "target": r.target,
                        "address": r.address,
                        "details": r.details,
                        "hash": r.hash,
                    },
                    sort_keys=True,
                )
            )
        return
    table = Table("seq", "at (UTC)", "actor", "action", "target", "address")
    for r in page.items:
        table.add_row(
            str(r.seq), f"{r.at:%Y-%m-%d %H:%M:%S}", r.actor, r.action, r.target, r.address or ""
        )
    _out.print(table)
    _out.print(f"{len(page.items)} of {page.total}")
