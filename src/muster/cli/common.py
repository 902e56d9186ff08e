"""Pieces every command shares: loading inventories, selecting hosts, errors, and
opening the server's database for the commands that work on it directly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.selectors import select
from muster.errors import MusterError

if TYPE_CHECKING:
    from muster.config import Settings
    from muster.engine.local_audit import LocalAuditLog
    from muster.store.protocols import ServerStore

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_HOSTS_FAILED",
    "AuditFileOption",
    "DataDirOption",
    "DatabaseUrlOption",
    "NoAuditOption",
    "err_console",
    "fail",
    "load_settings",
    "load_sources",
    "open_database",
    "open_local_audit",
    "pick_hosts",
    "print_warnings",
]

#: Some host did not succeed (Ansible uses 2; we keep 2 for usage errors, as Click does).
EXIT_HOSTS_FAILED = 1
EXIT_BAD_INPUT = 2

err_console = Console(stderr=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    # The message quotes user and file text (``[web:vars]``, ``([a:f])``): escaped, so
    # Rich prints it as written instead of reading it as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def load_sources(sources: Sequence[Path | str]) -> Inventory:
    """The inventory the ``-i`` sources make (files, directories, host lists
    ``a,b,``), read as Ansible reads them; none is an empty inventory. Errors are
    one line (exit 2)."""
    if not sources:
        return Inventory()
    # Here, not at the top: the file formats need PyYAML, `run localhost` does not.
    from muster.engine.inventory_files import load_inventories

    try:
        return load_inventories(sources)
    except MusterError as exc:
        raise fail(str(exc)) from exc


def print_warnings(inventory: Inventory) -> None:
    """What Ansible would warn about while reading the inventory, on stderr as written."""
    for warning in inventory.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False)


def pick_hosts(inventory_paths: Sequence[Path | str], selector: str) -> list[Host]:
    """Hosts the selector picks; no inventory means only the implicit localhost."""
    inventory = load_sources(inventory_paths)
    print_warnings(inventory)
    try:
        return select(inventory, selector)
    except MusterError as exc:
        raise fail(str(exc)) from exc


DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="The server's data directory (MUSTER_DATA_DIR).")
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="The server's database (MUSTER_DATABASE_URL)."),
]

AuditFileOption = Annotated[
    Path | None,
    typer.Option(
        "--audit-file",
        help="Record every host run in this JSON-lines audit file (default: MUSTER_AUDIT_FILE, "
        "else $XDG_STATE_HOME/muster/audit.jsonl).",
    ),
]
NoAuditOption = Annotated[
    bool, typer.Option("--no-audit", help="Do not record this run in the local audit file.")
]


def open_local_audit(audit_file: Path | None, no_audit: bool) -> LocalAuditLog | None:
    """The run's local audit log; a file that cannot be opened stops the run (exit 2)
    before any host starts."""
    from muster.engine.local_audit import AuditWriteError, open_audit

    if no_audit:
        if audit_file is not None:
            raise fail("--audit-file and --no-audit contradict each other")
        return None
    try:
        return open_audit(audit_file)
    except AuditWriteError as exc:
        raise fail(f"{exc} (nothing was run; --no-audit runs without the local audit)") from exc


def load_settings(**overrides: object) -> Settings:
    """``Settings`` from ``MUSTER_*`` plus the options given (``None``: not given);
    a bad value is one line naming it, exit 2."""
    from pydantic import ValidationError as PydanticValidationError

    from muster.config import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except PydanticValidationError as exc:
        raise fail(f"invalid configuration: {exc}") from exc


def open_database(
    data_dir: Path | None, database_url: str | None, *, reader: bool = False
) -> ServerStore:
    """The server's store, opened as :data:`muster.app.ADMIN` (no master key needed);
    a ``reader`` (:data:`muster.app.AUDIT_READER`) creates no key and writes nothing.
    Errors are one line naming the problem, not a traceback."""
    from muster.app import ADMIN, AUDIT_READER, open_services
    from muster.config import Settings
    from muster.security.audit import AuditKeyError

    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    try:
        services = open_services(
            Settings(**overrides),  # type: ignore[arg-type]
            AUDIT_READER if reader else ADMIN,
        )
    except AuditKeyError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # configuration or connection: say what, not a traceback
        raise fail(f"cannot open the database: {exc}") from exc
    return services.store
