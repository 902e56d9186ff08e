"""``muster approval list|show|approve|reject``: the approvals inbox from the terminal.

One list for both kinds of request: those bound to an execution (a script,
command or job that needs approval) and workflow approval steps; a vote on
either goes through the same endpoint and the same rules (the requester never
approves their own request; a deadline passes into rejection).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from muster.cli.client import ApiClient

__all__ = ["app"]

app = typer.Typer(help="List and decide approval requests.", no_args_is_help=True)
_console = Console()
_BASE = "/api/v1/automation/approvals"
Url = Annotated[str | None, typer.Option("--url", help="Server URL (or MUSTER_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _what(a: dict[str, Any]) -> str:
    """What the request is for: an execution, or a workflow step."""
    if a.get("execution_id"):
        return f"execution {a['execution_id']}"
    wf = a.get("workflow") or {}
    if wf:
        return f"workflow instance {wf.get('instance_id')} step {wf.get('step')}"
    return str(a.get("subject"))


@app.command("list")
def list_approvals(
    status: Annotated[
        str | None, typer.Option(help="pending, approved, rejected or expired (default: all).")
    ] = "pending",
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Approval requests (pending ones by default), executions' and workflow steps'."""
    params = {"status": status} if status and status != "all" else {}
    data = ApiClient(url).request("GET", _BASE, params=params)
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    table = Table(title=f"{data['total']} approval requests")
    for col in ("id", "for", "policy", "approvers", "votes", "status", "deadline"):
        table.add_column(col, overflow="fold")
    for a in data["items"]:
        votes = f"{len([v for v in a['votes'] if v['decision'] == 'approve'])}/{a['required']}"
        table.add_row(
            a["id"],
            escape(_what(a)),
            a["policy"],
            escape(", ".join(a["approvers"])),
            votes,
            a["status"],
            str(a.get("deadline") or ""),
        )
    _console.print(table)


@app.command("show")
def show(approval_id: Annotated[str, typer.Argument()], url: Url = None) -> None:
    """One request with its votes (JSON)."""
    typer.echo(json.dumps(ApiClient(url).request("GET", f"{_BASE}/{approval_id}"), indent=2))


def _vote(approval_id: str, decision: str, reason: str | None, url: str | None) -> None:
    params = {"reason": reason} if reason else {}
    data = ApiClient(url).request("POST", f"{_BASE}/{approval_id}/{decision}", params=params)
    _console.print(f"approval {approval_id} ({escape(_what(data))}): {data['status']}")


@app.command("approve")
def approve(
    approval_id: Annotated[str, typer.Argument()],
    reason: Annotated[str | None, typer.Option("--reason", "-r")] = None,
    url: Url = None,
) -> None:
    """Vote to approve; the run or workflow step goes on once the policy is met."""
    _vote(approval_id, "approve", reason, url)


@app.command("reject")
def reject(
    approval_id: Annotated[str, typer.Argument()],
    reason: Annotated[str | None, typer.Option("--reason", "-r")] = None,
    url: Url = None,
) -> None:
    """Vote to reject (the requester's own rejection withdraws the request)."""
    _vote(approval_id, "reject", reason, url)
