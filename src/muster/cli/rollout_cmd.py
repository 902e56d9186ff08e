"""``muster rollout publish|list|show``: rollout reports on a server.

``publish FILE`` sends a rollout's JSON (what ``report_document`` in the
library writes, or a plain ``RolloutRun.to_dict()``) to ``muster serve``,
which masks its secrets and keeps it once; ``list`` and ``show`` read them
back. These commands only speak HTTP: nothing here imports the engine, the
store or the server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from muster.cli.client import ApiClient
from muster.cli.common import fail

__all__ = ["app"]

app = typer.Typer(help="Publish rollout reports to the server and read them back.")
_console = Console()
_R = "/api/v1/rollouts"
Url = Annotated[str | None, typer.Option("--url", help="Server URL (or MUSTER_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
def publish(
    file: Annotated[Path, typer.Argument(help="The rollout's JSON report.")],
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Publish a rollout report (the same document again changes nothing)."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise fail(f"{file} is not JSON: {exc}") from exc
    data = ApiClient(url).request("POST", _R, json=document)
    if as_json:
        _echo_json(data)
        return
    state = "published" if data.get("created") else "already published (unchanged)"
    _console.print(
        f"rollout {escape(data['id'])} of {escape(data['workflow'])}: "
        f"{escape(data['status'])}, {state}"
    )
    if data.get("flagged"):
        _console.print(f"[bold red]{data['flagged']} host(s) FLAGGED[/]")


@app.command("list")
def list_reports(
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Published rollout reports, newest first."""
    rows = ApiClient(url).request("GET", _R, params={"limit": limit})
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        _console.print("no rollout report published")
        return
    table = Table("id", "workflow", "status", "hosts", "flagged", "started")
    for r in rows:
        table.add_row(
            escape(r["id"]),
            escape(r["workflow"]),
            escape(r["status"]),
            str(r["hosts"]),
            str(r["flagged"]),
            escape(str(r["started_at"] or "-")),
        )
    _console.print(table)


@app.command()
def show(
    report_id: Annotated[str, typer.Argument(help="The rollout's id.")],
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """One report: its waves with each host's state, gates, rollback and flagged hosts."""
    data = ApiClient(url).request("GET", f"{_R}/{report_id}")
    if as_json:
        _echo_json(data)
        return
    doc = data["document"]
    hosts = doc.get("hosts") or {}
    _console.print(
        f"rollout {escape(data['id'])} of {escape(data['workflow'])}: "
        f"[bold]{escape(data['status'])}[/]"
    )
    if doc.get("message"):
        _console.print(escape(str(doc["message"])))
    for i, wave in enumerate(doc.get("waves") or []):
        _console.print(f"wave {i + 1} ({escape(str(wave.get('status')))})")
        for host in wave.get("hosts") or []:
            info = hosts.get(host) or {}
            line = f"  {escape(host)}: {escape(str(info.get('state', '?')))}"
            if info.get("drift"):
                line += f" drift: {escape(', '.join(info['drift']))}"
            if info.get("reason"):
                line += f" ({escape(str(info['reason']))})"
            _console.print(line)
        gate = wave.get("gate")
        if gate:
            verdict = "passed" if gate.get("passed") else "stopped the rollout"
            why = f": {gate['why']}" if gate.get("why") else ""
            _console.print(f"  gate: {verdict}{escape(why)}")
    flagged = doc.get("flagged_hosts") or []
    if flagged:
        _console.print(f"[bold red]FLAGGED[/]: {escape(', '.join(flagged))}")
