"""``muster workflow push|start|list|show|instances|status|pause|resume|kill|retry``:
workflows on a server.

These commands only speak HTTP to ``muster serve`` (the in-process ``run`` and
``plan`` live beside them in :mod:`muster.cli.workflow_cmd`, which calls
:func:`register`); nothing here imports the engine, the store or the server.
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
from muster.cli.common import EXIT_HOSTS_FAILED, fail

__all__ = ["register"]

_console = Console()
_WF = "/api/v1/automation/workflows"
_INST = "/api/v1/automation/workflow-instances"
Url = Annotated[str | None, typer.Option("--url", help="Server URL (or MUSTER_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_UNSUCCESSFUL = {"failed", "killed"}


def _params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{item!r}: use NAME=VALUE", param_hint="--param")
        out[name.strip()] = value
    return out


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def push(
    file: Annotated[Path, typer.Argument(help="Workflow definition (YAML or JSON).")],
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Save a workflow definition on the server (by its name; changed content is a new
    version, identical content none)."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc}") from exc
    data = ApiClient(url).request("POST", _WF, json={"source": text})
    if as_json:
        _echo_json(data)
        return
    state = "new version" if data.get("created") else "unchanged"
    _console.print(f"workflow {escape(data['name'])} v{data['version']} ({state})")


def start(
    name: Annotated[str, typer.Argument(help="Workflow name or id.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE.")] = None,
    targets: Annotated[
        str | None, typer.Option("--targets", "-t", help="Selector for steps without targets.")
    ] = None,
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; nothing is queued.")
    ] = False,
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Start an instance of a saved workflow."""
    body: dict[str, Any] = {"parameters": _params(param or []), "dry_run": dry_run}
    if targets:
        body["targets"] = targets
    if version is not None:
        body["version"] = version
    data = ApiClient(url).request("POST", f"{_WF}/{name}/start", json=body)
    if as_json or dry_run:
        _echo_json(data)
        return
    _console.print(f"instance {data['id']}: {data['status']}")


def list_workflows(url: Url = None, as_json: AsJson = False) -> None:
    """Workflows saved on the server."""
    data = ApiClient(url).request("GET", _WF)
    if as_json:
        _echo_json(data)
        return
    table = Table(title=f"{data['total']} workflows")
    for col in ("name", "version", "steps", "saved"):
        table.add_column(col)
    for w in data["items"]:
        table.add_row(
            escape(w["name"]), str(w["version"]), str(len(w["steps"])), str(w["created_at"])
        )
    _console.print(table)


def show(
    name: Annotated[str, typer.Argument(help="Workflow name or id, or an instance id.")],
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """A workflow's latest definition."""
    data = ApiClient(url).request("GET", f"{_WF}/{name}")
    if as_json:
        _echo_json(data)
        return
    _console.print(
        f"workflow {escape(data['name'])} v{data['version']} ({data['content_hash'][:12]})"
    )
    typer.echo(data["source"])


def instances(
    workflow: Annotated[str | None, typer.Option("--workflow", "-w", help="Only this one.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Workflow instances, newest first."""
    query: dict[str, str] = {}
    if workflow:
        query["workflow"] = workflow
    if status:
        query["status"] = status
    data = ApiClient(url).request("GET", _INST, params=query)
    if as_json:
        _echo_json(data)
        return
    table = Table(title=f"{data['total']} instances")
    for col in ("id", "workflow", "status", "waiting", "created"):
        table.add_column(col, overflow="fold")
    for i in data["items"]:
        table.add_row(
            i["id"],
            escape(f"{i['workflow']} v{i['version']}"),
            i["status"],
            escape(i.get("waiting_reason") or ""),
            str(i["created_at"]),
        )
    _console.print(table)


def status(
    instance_id: Annotated[str, typer.Argument(help="Instance id.")],
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """An instance: every step's state, and each host's result."""
    data = ApiClient(url).request("GET", f"{_INST}/{instance_id}")
    if as_json:
        _echo_json(data)
        return
    if data.get("rollout"):
        _rollout_table(data["rollout"])
    waiting = f" ({data['waiting_reason']})" if data.get("waiting_reason") else ""
    table = Table(title=f"instance {data['id']} of {data['workflow']}: {data['status']}{waiting}")
    for col in ("step", "type", "state", "host", "host state", "exit", "detail"):
        table.add_column(col, overflow="fold")
    for step in data["steps"]:
        hosts = step.get("hosts") or []
        detail = step.get("message") or ""
        if not hosts:
            table.add_row(
                step["id"], step.get("type", ""), step["state"], "", "", "", escape(detail)
            )
        for n, h in enumerate(hosts):
            table.add_row(
                step["id"] if n == 0 else "",
                step.get("type", "") if n == 0 else "",
                step["state"] if n == 0 else "",
                escape(h["host"]),
                h["state"],
                "" if h.get("exit_code") is None else str(h["exit_code"]),
                escape((h.get("stdout") or h.get("message") or "")[-80:]),
            )
    _console.print(table)
    if data["status"] in _UNSUCCESSFUL:
        raise typer.Exit(EXIT_HOSTS_FAILED)


def _rollout_table(r: dict[str, Any]) -> None:
    """A rollout's waves: state, hosts, gate, failed hosts; then rollback outcomes."""
    table = Table(title=f"rollout {r['id']}: {r['status']} {r.get('message') or ''}")
    for col in ("wave", "state", "hosts", "gate", "failed"):
        table.add_column(col, overflow="fold")
    for w in r["waves"]:
        gate = w.get("gate") or {}
        verdict = "" if not gate else ("passed" if gate.get("passed") else gate.get("why", ""))
        table.add_row(
            str(w["index"] + 1),
            w["status"],
            escape(", ".join(w["hosts"])),
            escape(verdict),
            escape(", ".join(sorted(w.get("failed_hosts") or {}))),
        )
    _console.print(table)
    for host, o in sorted((r.get("rollback") or {}).items()):
        flag = " (flagged)" if host in r.get("flagged_hosts", ()) else ""
        _console.print(f"rollback {escape(host)}: {o['state']}{flag} {escape(o['message'])}")


def _act(instance_id: str, step: str | None, action: str, url: str | None, **query: str) -> None:
    path = f"{_INST}/{instance_id}" + (f"/steps/{step}" if step else "")
    data = ApiClient(url).request("PUT", path, params={"action": action, **query})
    what = f"step {step} of instance {instance_id}" if step else f"instance {instance_id}"
    state = data.get("state") or data.get("status")
    _console.print(f"{what}: {state}")


Step = Annotated[str | None, typer.Option("--step", "-s", help="Only this step.")]


def pause(
    instance_id: Annotated[str, typer.Argument()],
    step: Step = None,
    duration: Annotated[
        str | None, typer.Option("--for", help="Resume by itself after this long, e.g. 5m.")
    ] = None,
    url: Url = None,
) -> None:
    """Start nothing new (an instance) or hold a step that has not started."""
    _act(instance_id, step, "pause", url, **({"duration": duration} if duration else {}))


def resume(
    instance_id: Annotated[str, typer.Argument()], step: Step = None, url: Url = None
) -> None:
    """Undo a pause."""
    _act(instance_id, step, "resume", url)


def kill(instance_id: Annotated[str, typer.Argument()], step: Step = None, url: Url = None) -> None:
    """Stop the instance (or one step): running hosts are cancelled, nothing new starts."""
    _act(instance_id, step, "kill", url)


def abort(instance_id: Annotated[str, typer.Argument()], url: Url = None) -> None:
    """Stop a rollout now without rolling anything back (running hosts are killed)."""
    _act(instance_id, None, "abort", url)


def rollback(instance_id: Annotated[str, typer.Argument()], url: Url = None) -> None:
    """Roll back a failed or aborted rollout: its waves' hosts, newest wave first."""
    _act(instance_id, None, "rollback", url)


def retry(
    instance_id: Annotated[str, typer.Argument()], step: Step = None, url: Url = None
) -> None:
    """Run a failed step again, or resume a failed instance from its failed steps."""
    _act(instance_id, step, "retry", url)


def register(app: typer.Typer) -> None:
    """Add the server commands to the ``workflow`` group."""
    app.command("push")(push)
    app.command("start")(start)
    app.command("list")(list_workflows)
    app.command("show")(show)
    app.command("instances")(instances)
    app.command("status")(status)
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("kill")(kill)
    app.command("retry")(retry)
    app.command("abort")(abort)
    app.command("rollback")(rollback)
