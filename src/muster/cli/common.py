"""Pieces every command shares: loading inventories, selecting hosts, errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console

from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.selectors import select
from muster.errors import MusterError

__all__ = ["EXIT_BAD_INPUT", "EXIT_HOSTS_FAILED", "err_console", "fail", "pick_hosts"]

#: Some host did not succeed (Ansible uses 2; we keep 2 for usage errors, as Click does).
EXIT_HOSTS_FAILED = 1
EXIT_BAD_INPUT = 2

err_console = Console(stderr=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def pick_hosts(inventory_paths: Sequence[Path], selector: str) -> list[Host]:
    """Hosts the selector picks; no inventory means only the implicit localhost."""
    try:
        if inventory_paths:
            # Here, not at the top: the file formats need PyYAML, `run localhost` does not.
            from muster.engine.inventory_files import load_inventories

            inventory = load_inventories(inventory_paths)
        else:
            inventory = Inventory()
        return select(inventory, selector)
    except MusterError as exc:
        raise fail(str(exc)) from exc
