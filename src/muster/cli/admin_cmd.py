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
from muster.security.audit import AuditKeyError, VerifyResult
from muster.security.passwords import generate_password
from muster.store.sqlalchemy_store import SqlStore, open_store

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


def _store(data_dir: Path | None, database_url: str | None, *, reader: bool = False) -> SqlStore:
    """The server's identity store; a ``reader`` creates no audit key and writes nothing."""
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    try:
        return open_store(
            Settings(**overrides),  # type: ignore[arg-type]
            open_vault=False,
            create_key=not reader,
            listen=False,
        )
    except AuditKeyError as exc:
        raise fail(str(exc)) from exc
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


def _parse_anchor(value: str) -> tuple[int, str]:
    """An anchor from a file written by ``muster audit anchor`` (JSON), or SEQ:HASH text."""
    path = Path(value)
    text = value
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"--anchor: cannot read {path}: {exc}") from exc
        if text.startswith("{"):
            try:
                data = json.loads(text)
                seq, digest = int(data["seq"]), str(data["hash"])
            except (ValueError, KeyError, TypeError) as exc:
                raise fail(f"--anchor: {path} is not an anchor file ({exc})") from exc
            text = f"{seq}:{digest}"
    seq_text, sep, digest = text.partition(":")
    if not sep or not seq_text.isdigit() or len(digest) != 64:
        raise fail(f"--anchor {value!r}: give a file written by `muster audit anchor`, or SEQ:HASH")
    return int(seq_text), digest.lower()


def _broken(result: VerifyResult) -> typer.Exit:
    _out.print(
        f"[bold red]audit chain broken[/] at seq {result.first_bad_seq}: {result.problem} "
        f"({result.checked} records before it are intact)"
    )
    return typer.Exit(EXIT_CHAIN_BROKEN)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            "--anchor",
            help="An anchor file from `muster audit anchor` (or SEQ:HASH); the chain must "
            "still hold that exact record. Repeatable.",
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Recompute the audit chain's HMACs; exit 1 naming the first edited, removed,
    reordered or rebuilt record, or an anchor the chain no longer holds."""
    anchors = [_parse_anchor(a) for a in anchor or ()]
    store = _store(data_dir, database_url, reader=True)
    try:
        result = store.verify_audit(anchors=anchors)
    finally:
        store.close()
    if not result.ok:
        raise _broken(result)
    head = f"{result.head[0]}:{result.head[1]}" if result.head else "empty"
    legacy = f" ({result.legacy} unkeyed from before keyed audit)" if result.legacy else ""
    pinned = f"; {result.anchors} anchor(s) found intact" if anchors else ""
    _out.print(f"audit chain ok: {result.checked} records{legacy}{pinned}; newest {head}")


@audit_app.command("anchor")
def audit_anchor(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the anchor to this file (keep it away from the server); default: print it.",
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Verify the chain, then export its newest record (seq and hash) as an anchor.

    Kept where the server cannot write, an anchor lets a later `muster audit
    verify --anchor FILE` catch truncation or a rewrite, even by someone
    holding the audit key."""
    store = _store(data_dir, database_url, reader=True)
    try:
        result = store.verify_audit()
    finally:
        store.close()
    if not result.ok:
        raise _broken(result)
    if result.head is None:
        raise fail("the audit log is empty: nothing to anchor yet")
    seq, digest = result.head
    exported = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    text = json.dumps({"seq": seq, "hash": digest, "exported_at": exported}, sort_keys=True)
    text += "\n"
    if output is None:
        print(text, end="")
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"--output: cannot write {output}: {exc}") from exc
    _out.print(f"anchor seq {seq} written to {output}")


@audit_app.command("seal-legacy")
def audit_seal_legacy(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Seal a log written before keyed audit: verify its unkeyed records and append
    the keyed switch record after them (once; the server does it itself when it
    creates the audit key)."""
    store = _store(data_dir, database_url, reader=True)
    try:
        rec = store.seal_legacy_audit()
    except AuditKeyError as exc:
        raise fail(str(exc)) from exc
    finally:
        store.close()
    _out.print(f"sealed: switch record seq {rec.seq} chained with audit key {rec.key_id}")


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
