"""``muster inventory``: see what an inventory holds and what a selector picks.

``--list``, ``--graph`` and ``--host NAME`` print what ``ansible-inventory``
prints for the same sources, so an Ansible user can compare the two.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from muster.cli.common import fail, load_sources, print_warnings
from muster.domain.selectors import select
from muster.errors import MusterError

app = typer.Typer(help="Inspect inventories and selectors.", no_args_is_help=True)

#: Host names, groups and labels come from files: printed as written, never as markup.
_out = Console(markup=False, highlight=False)


@app.command("list")
def list_hosts(
    selector: Annotated[
        str, typer.Argument(help="Host pattern, e.g. 'web:&dc1' (with --graph: a group).")
    ] = "all",
    inventory: Annotated[
        list[str] | None,
        typer.Option(
            "-i",
            "--inventory",
            help="Ansible INI/YAML file, directory, host list 'a,b,' or OpenSSH config; "
            "repeatable.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ansible_list: Annotated[
        bool, typer.Option("--list", help="Print what `ansible-inventory --list` prints.")
    ] = False,
    graph: Annotated[
        bool, typer.Option("--graph", help="Print what `ansible-inventory --graph` prints.")
    ] = False,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Print what `ansible-inventory --host NAME` prints."),
    ] = None,
) -> None:
    """Show the hosts a selector picks (or an ansible-inventory view)."""
    from muster.domain.inventory_views import dump_json, graph_view, host_view, list_view

    loaded = load_sources(inventory or [])
    print_warnings(loaded)
    try:
        if ansible_list:
            typer.echo(dump_json(list_view(loaded)))
            return
        if graph:
            typer.echo(graph_view(loaded, selector))
            return
        if host is not None:
            typer.echo(dump_json(host_view(loaded, host)))
            return
        hosts = select(loaded, selector)
    except MusterError as exc:
        raise fail(str(exc)) from exc
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
    _out.print(table)
