"""``muster exec``: start and follow executions on a server."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from muster.cli.client import ApiClient
from muster.cli.common import EXIT_HOSTS_FAILED
from muster.cli.run_cmd import parse_params
from muster.cli.script_cmd import find_script
from muster.domain.durations import parse_duration
from muster.errors import ValidationError

app = typer.Typer(help="Start, follow, cancel and retry executions.", no_args_is_help=True)
_console = Console()

Url = Annotated[str | None, typer.Option("--url", help="Server URL (or MUSTER_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_BASE = "/api/v1/automation/executions"
_TERMINAL = {"succeeded", "failed", "timed_out", "cancelled", "rejected", "skipped"}


@app.command("start")
def start(
    script: Annotated[str, typer.Argument(help="Script name or id.")],
    hosts: Annotated[str, typer.Option("--hosts", "-H", help="Comma-separated host names/ids.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE.")] = None,
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream output.")] = False,
    forks: Annotated[
        int | None, typer.Option(help="Hosts running at once (default: as workers allow).", min=1)
    ] = None,
    per_group: Annotated[
        int | None, typer.Option("--per-group", help="Hosts running at once per group.", min=1)
    ] = None,
    delay: Annotated[str | None, typer.Option(help="Time between host starts, e.g. 2s.")] = None,
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Execute a saved script; the version is pinned by hash when the request is made.

    ``--forks``, ``--per-group`` and ``--delay`` are kept by the server's
    workers together, however many there are.
    """
    client = ApiClient(url)
    found = find_script(client, script)
    body: dict[str, Any] = {
        "host_ids": [h.strip() for h in hosts.split(",") if h.strip()],
        "parameter_values": parse_params(param or []),
    }
    if version is not None:
        body["version"] = version
    if forks is not None:
        body["forks"] = forks
    if per_group is not None:
        body["per_group"] = per_group
    if delay is not None:
        try:
            body["delay"] = parse_duration(delay, field="delay")
        except ValidationError as exc:
            raise typer.BadParameter(str(exc), param_hint="--delay") from None
    result = client.request("POST", f"/api/v1/automation/scripts/{found['id']}/execute", json=body)
    if as_json and not follow:
        typer.echo(json.dumps(result, indent=2))
        return
    _console.print(f"execution {result['id']}: {result['status']}")
    for skipped in result.get("skipped_hosts") or []:
        _console.print(f"  skipped {skipped}", style="dim")
    if follow:
        _follow(client, result["id"])
        status(result["id"], url=url)


@app.command("status")
def status(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """An execution's rolled-up status and every host's result."""
    data = ApiClient(url).request("GET", f"{_BASE}/{execution_id}")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=f"execution {data['id']}: {data['status']}")
    for col in ("host", "state", "exit", "duration", "detail"):
        table.add_column(col, overflow="fold")
    for r in data.get("hosts") or data.get("host_results") or []:
        detail = r.get("waiting_reason") if r.get("state") in ("queued", "pending_approval") else ""
        if r.get("state") not in ("succeeded", "queued", "running", "pending_approval"):
            detail = r.get("message") or r.get("reason") or ""
        duration = r.get("duration")
        table.add_row(
            escape(str(r.get("host"))),
            str(r.get("state")),
            "" if r.get("exit_code") is None else str(r["exit_code"]),
            "" if duration is None else f"{duration:.2f}s",
            escape(str(detail or "")),
        )
    _console.print(table)
    if data["status"] in _TERMINAL and data["status"] != "succeeded":
        raise typer.Exit(EXIT_HOSTS_FAILED)


@app.command("logs")
def logs(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming.")] = False,
    url: Url = None,
) -> None:
    """Output of every host, prefixed by host name; --follow streams it live."""
    client = ApiClient(url)
    if follow:
        _follow(client, execution_id)
        return
    data = client.request("GET", f"{_BASE}/{execution_id}")
    for r in data.get("hosts") or data.get("host_results") or []:
        for stream in ("stdout", "stderr"):
            text = r.get(f"{stream}_tail") or r.get(stream) or ""
            for line in text.splitlines():
                _print_line(r.get("host", "?"), stream, line)


@app.command("cancel")
def cancel(execution_id: Annotated[str, typer.Argument()], url: Url = None) -> None:
    """Stop unstarted hosts and kill running ones."""
    data = ApiClient(url).request("POST", f"{_BASE}/{execution_id}/cancel")
    _console.print(f"execution {execution_id}: {data.get('status', 'cancel requested')}")


@app.command("retry")
def retry(execution_id: Annotated[str, typer.Argument()], url: Url = None) -> None:
    """Queue a new attempt on hosts that failed, timed out or were lost."""
    data = ApiClient(url).request("POST", f"{_BASE}/{execution_id}/retry")
    _console.print(f"execution {execution_id}: {data.get('status', 'retried')}")


def _follow(client: ApiClient, execution_id: str) -> None:
    """Print SSE output events until the server says the execution ended."""
    event = ""
    for line in client.stream_lines(f"{_BASE}/{execution_id}/stream"):
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            payload = json.loads(line[5:].strip() or "{}")
            if event == "output":
                for text in str(payload.get("data", "")).splitlines():
                    _print_line(payload.get("host", "?"), payload.get("stream", "stdout"), text)
            elif event == "state" and payload.get("state") in _TERMINAL:
                _console.print(f"[bold]{escape(str(payload.get('host')))}[/] {payload['state']}")
            elif event == "end":
                return


def _print_line(host: str, stream: str, text: str) -> None:
    style = "red" if stream == "stderr" else "cyan"
    _console.print(f"[{style}]{escape(host)}[/] {escape(text)}", highlight=False)
