"""``muster audit ...``: query the audit log, verify its chain, export anchors.

These commands open the server's database directly (same ``MUSTER_*``
settings as ``muster serve``, or ``--data-dir`` / ``--database-url``), so an
operator checks the audit chain without trusting the process that wrote it.
Verifying creates no key and writes nothing.

Exit codes: 0 ok; 1 the audit chain is broken; 2 bad input.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from muster.cli.common import DatabaseUrlOption, DataDirOption, fail, open_database
from muster.security.audit import AuditKeyError, VerifyResult

__all__ = ["EXIT_CHAIN_BROKEN", "audit_app"]

EXIT_CHAIN_BROKEN = 1

audit_app = typer.Typer(help="Query and verify the audit log.", no_args_is_help=True)
#: Prints stored text (actors, targets, problems) as written: no Rich markup.
_out = Console(highlight=False, soft_wrap=True, markup=False)


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
        f"[bold red]audit chain broken[/] at seq {result.first_bad_seq}: "
        f"{escape(str(result.problem))} ({result.checked} records before it are intact)",
        markup=True,
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
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Recompute the audit chain's HMACs; exit 1 naming the first edited, removed,
    reordered or rebuilt record, or an anchor the chain no longer holds."""
    anchors = [_parse_anchor(a) for a in anchor or ()]
    store = open_database(data_dir, database_url, reader=True)
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


@audit_app.command("verify-file")
def audit_verify_file(
    path: Annotated[Path, typer.Argument(help="A local audit file (JSON lines).")],
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Its audit key (default: <file stem>.key beside it)."),
    ] = None,
) -> None:
    """Verify the hash chain of a local audit file (what `muster run`, `muster workflow
    run` and the library record); exit 1 naming the first broken line."""
    from muster.engine.local_audit import verify_file

    if not path.is_file():
        raise fail(f"{path}: no such file")
    try:
        result = verify_file(path, key_file)
    except (AuditKeyError, OSError) as exc:
        raise fail(str(exc)) from exc
    if not result.ok:
        _out.print(
            f"[bold red]audit chain broken[/] at line {result.first_bad_line} of "
            f"{escape(str(path))}: {escape(str(result.problem))} "
            f"({result.checked} lines before it are intact)",
            markup=True,
        )
        raise typer.Exit(EXIT_CHAIN_BROKEN)
    _out.print(f"audit chain intact: {result.checked} records in {path}")


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
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Verify the chain, then export its newest record (seq and hash) as an anchor.

    Kept where the server cannot write, an anchor lets a later `muster audit
    verify --anchor FILE` catch truncation or a rewrite, even by someone
    holding the audit key."""
    store = open_database(data_dir, database_url, reader=True)
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
def audit_seal_legacy(
    data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None
) -> None:
    """Seal a log written before keyed audit: verify its unkeyed records and append
    the keyed switch record after them (once; the server does it itself when it
    creates the audit key)."""
    store = open_database(data_dir, database_url, reader=True)
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
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Audit records, newest first."""
    store = open_database(data_dir, database_url)
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
