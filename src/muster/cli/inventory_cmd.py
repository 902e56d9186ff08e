"""``muster inventory``: see what an inventory holds and what a selector picks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from muster.cli.common import fail, pick_hosts

app = typer.Typer(help="Inspect inventories and selectors.", no_args_is_help=True)


@app.command("list")
def list_hosts(
    selector: Annotated[str, typer.Argument(help="Host pattern, e.g. 'web:&dc1'.")] = "all",
    inventory: Annotated[
        list[Path] | None,
        typer.Option("-i", "--inventory", help="Ansible INI/YAML or OpenSSH config; repeatable."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the hosts a selector picks."""
    hosts = pick_hosts(inventory or [], selector)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": h.name,
                        "address": h.hostname,
                        "port": h.port,
                        "user": h.user,
                        "transport": h.transport.value,
                        "groups": list(h.groups),
                        "labels": dict(h.labels),
                        "shells": list(h.effective_shells),
                    }
                    for h in hosts
                ],
                indent=2,
            )
        )
        return
    if not hosts:
        raise fail(f"selector {selector!r} matches no host", code=1)
    table = Table(title=f"{len(hosts)} host(s) match {selector!r}")
    for col in ("host", "address", "transport", "groups", "labels"):
        table.add_column(col)
    for h in hosts:
        table.add_row(
            h.name,
            f"{h.hostname}:{h.port}" if h.transport.value == "ssh" else "-",
            h.transport.value,
            ",".join(h.groups),
            ",".join(f"{k}={v}" for k, v in h.labels.items()),
        )
    Console().print(table)
