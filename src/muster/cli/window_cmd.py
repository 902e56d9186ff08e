"""``muster window``: maintenance windows on a server (add, list, delete, override,
forecast).

A thin face over ``/api/v1/maintenance-windows``: the server validates (a bad
window is refused naming the field) and audits; this parses and prints.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from muster.cli.client import ApiClient
from muster.cli.common import fail

window_app = typer.Typer(
    help="Maintenance windows: when hosts may start runs.", no_args_is_help=True
)
_console = Console()
_W = "/api/v1/maintenance-windows"

Url = Annotated[str | None, typer.Option("--url", help="Server URL (or MUSTER_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


@window_app.command("add")
def add(
    spec: Annotated[
        str | None,
        typer.Argument(help="Recurring window: 'Sun 01:00-03:00' (zone optional at the end)."),
    ] = None,
    group: Annotated[str | None, typer.Option(help="The host group it covers.")] = None,
    host: Annotated[str | None, typer.Option(help="The host it covers.")] = None,
    all_hosts: Annotated[bool, typer.Option("--all", help="It covers every host.")] = False,
    timezone: Annotated[str, typer.Option("--tz", help="IANA time zone.")] = "UTC",
    name: Annotated[str, typer.Option(help="A name (default: the spec).")] = "",
    blackout: Annotated[
        bool, typer.Option(help="A one-off blackout (--from/--until) instead.")
    ] = False,
    start: Annotated[
        str | None, typer.Option("--from", help="One-off start, e.g. 2030-12-24T18:00.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="One-off end.")] = None,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop hosts still running when it closes.")
    ] = False,
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Add a window: recurring (SPEC), or one-off with --from/--until (--blackout for one)."""
    scopes = [s for s, on in (("group", group), ("host", host), ("all", all_hosts)) if on]
    if len(scopes) != 1:
        raise fail("say what it covers: exactly one of --group, --host or --all")
    if (spec is None) == (start is None and until is None):
        raise fail("give either a recurring SPEC or --from and --until")
    body: dict[str, Any] = {
        "name": name,
        "scope": scopes[0],
        "target": group or host or "",
        "timezone": timezone,
        "close_policy": "stop" if stop else "finish",
    }
    if spec is not None:
        if blackout:
            raise fail("--blackout takes --from and --until, not a recurring SPEC")
        body.update(kind="recurring", spec=spec)
    else:
        body.update(kind="blackout" if blackout else "extra", starts_at=start, ends_at=until)
    made = ApiClient(url).request("POST", _W, json=body)
    if as_json:
        _print_json(made)
        return
    _console.print(
        f"window {made['id']}: {made['kind']} {made['spec']} ({made['scope']} "
        f"{made['target']}, close: {made['close_policy']})"
    )


@window_app.command("list")
def list_windows(url: Url = None, as_json: AsJson = False) -> None:
    """Every window, with when it next opens."""
    items = ApiClient(url).request("GET", _W)
    if as_json:
        _print_json(items)
        return
    table = Table("id", "name", "kind", "covers", "when", "close", "next opens")
    for w in items:
        nxt = (w.get("next_open") or {}).get("start") or "-"
        covers = "all hosts" if w["scope"] == "all" else f"{w['scope']} {w['target']}"
        table.add_row(w["id"], w["name"], w["kind"], covers, w["spec"], w["close_policy"], str(nxt))
    _console.print(table)


@window_app.command("delete")
def delete(
    window_id: Annotated[str, typer.Argument(help="The window's id.")], url: Url = None
) -> None:
    """Delete a window (runs waiting for it are looked at again)."""
    ApiClient(url).request("DELETE", f"{_W}/{window_id}")
    _console.print(f"window {window_id} deleted")


@window_app.command("override")
def override(
    execution_id: Annotated[str, typer.Argument(help="The execution to run now.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    url: Url = None,
) -> None:
    """Run an execution now, outside its hosts' windows (needs windows.override; audited)."""
    body = {"execution_id": execution_id, "reason": reason}
    done = ApiClient(url).request("POST", f"{_W}/overrides", json=body)
    _console.print(f"execution {execution_id}: {done['released']} waiting host run(s) released")


@window_app.command("forecast")
def forecast(
    days: Annotated[float, typer.Option(help="How many days ahead.", min=0.01, max=92)] = 7,
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """What the schedules will run on which hosts, the window each lands in, and what
    will not fit."""
    fc = ApiClient(url).request("GET", f"{_W}/forecast", params={"days": days})
    if as_json:
        _print_json(fc)
        return
    table = Table("due", "what", "host", "status", "starts", "window")
    for e in fc["entries"]:
        table.add_row(
            str(e["due_at"]),
            e["source"],
            e["host"],
            e["status"],
            str(e["starts_at"] or "-"),
            e["window"] or (e["reason"] or "-"),
        )
    _console.print(table)
    misfits = fc["will_not_fit"]
    _console.print(
        f"{len(fc['entries'])} host runs in the next {days:g} days; "
        f"{len(misfits)} will not fit in a window"
    )
