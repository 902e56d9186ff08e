"""``muster schedule``: cron schedules on a server (add, list, show, pause, resume,
run-now, delete), through the API like ``muster exec``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from muster.cli.client import ApiClient
from muster.cli.common import fail
from muster.cli.run_cmd import parse_params
from muster.domain.durations import parse_duration
from muster.errors import ValidationError

__all__ = ["app"]

app = typer.Typer(help="Add, list, pause, resume and run schedules.", no_args_is_help=True)
_console = Console()
_BASE = "/api/v1/automation/schedules"

Url = Annotated[str | None, typer.Option("--url", help="Server URL (or MUSTER_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Name = Annotated[str, typer.Argument(help="Schedule name or id.")]


def _seconds(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text, field=option.lstrip("-"))
    except ValidationError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the schedule (unique).")],
    cron: Annotated[str, typer.Option("--cron", help="5-field cron, e.g. '30 2 * * *'.")],
    hosts: Annotated[str, typer.Option("--hosts", "-H", help="Comma-separated hosts/selectors.")],
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone, e.g. Europe/Berlin.")] = "UTC",
    script: Annotated[
        str | None, typer.Option("--script", help="Script name or id to run.")
    ] = None,
    version: Annotated[
        str, typer.Option("--version", help="Script version number, or 'latest' at fire time.")
    ] = "latest",
    command: Annotated[
        str | None, typer.Option("--command", "-c", help="A command line to run instead.")
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="A built-in job type to run instead.")
    ] = None,
    field: Annotated[
        list[str] | None, typer.Option("--field", help="Job field NAME=VALUE.")
    ] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE.")] = None,
    timeout: Annotated[str | None, typer.Option(help="Command timeout, e.g. 5m.")] = None,
    max_runs: Annotated[int | None, typer.Option("--max-runs", min=1)] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="End date, ISO 8601 with zone (2027-01-01T00:00Z).")
    ] = None,
    misfire: Annotated[
        str, typer.Option("--misfire", help="After downtime: skip, run_once or catch_up.")
    ] = "run_once",
    catch_up: Annotated[
        int, typer.Option("--catch-up", help="With --misfire catch_up: at most N.", min=1)
    ] = 1,
    max_lateness: Annotated[
        str | None, typer.Option("--max-lateness", help="Later than this a tick is missed (1h).")
    ] = None,
    forks: Annotated[int | None, typer.Option(min=1)] = None,
    per_group: Annotated[int | None, typer.Option("--per-group", min=1)] = None,
    delay: Annotated[str | None, typer.Option(help="Time between host starts, e.g. 2s.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Schedule a script (--script), a command (--command) or a built-in job (--job)."""
    chosen = [x for x in (script, command, job) if x is not None]
    if len(chosen) != 1:
        raise fail("give exactly one of --script, --command or --job")
    body: dict[str, Any] = {
        "name": name,
        "cron_expression": cron,
        "timezone": tz,
        "host_ids": [h.strip() for h in hosts.split(",") if h.strip()],
        "parameter_values": parse_params(param or []),
        "enabled": not paused,
        "misfire_policy": misfire,
        "catch_up_limit": catch_up,
    }
    if script is not None:
        body.update(target="script", script=script)
        if version != "latest":
            if not version.isdigit():
                raise typer.BadParameter("a number or 'latest'", param_hint="--version")
            body["version"] = int(version)
    elif command is not None:
        body.update(target="command", command=command)
    else:
        body.update(target="job", job_type=job, job_fields=parse_params(field or []))
    optional = {
        "timeout": _seconds(timeout, "--timeout"),
        "max_runs": max_runs,
        "end_at": end,
        "max_lateness": _seconds(max_lateness, "--max-lateness"),
        "forks": forks,
        "per_group": per_group,
        "delay": _seconds(delay, "--delay"),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    created = ApiClient(url).request("POST", _BASE, json=body)
    if as_json:
        typer.echo(json.dumps(created, indent=2))
        return
    _console.print(
        f"schedule {escape(created['name'])} ({created['id']}): next run {_when(created)}"
    )


def _when(s: dict[str, Any]) -> str:
    if not s.get("enabled"):
        return "paused"
    return str(s.get("next_run") or "none (ended)")


@app.command("list")
def list_schedules(url: Url = None, as_json: AsJson = False) -> None:
    """Every schedule with its cron, last run and status, and next run."""
    items = ApiClient(url).request("GET", _BASE)
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    table = Table(
        "name", "cron", "zone", "target", "enabled", "last run", "last status", "next run"
    )
    for s in items:
        table.add_row(
            escape(s["name"]),
            escape(s["cron_expression"]),
            s["timezone"],
            escape(s["target_label"]),
            "yes" if s["enabled"] else "paused",
            str(s["last_run"] or "-"),
            str(s["last_status"] or "-"),
            _when(s),
        )
    _console.print(table)


@app.command("show")
def show(
    name: Name,
    firings: Annotated[int, typer.Option("--firings", help="How many recent firings.")] = 20,
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """One schedule and its recent firings (the executions it started)."""
    client = ApiClient(url)
    s = client.request("GET", f"{_BASE}/{name}")
    recent = client.request("GET", f"{_BASE}/{s['id']}/firings", params={"limit": firings})
    if as_json:
        typer.echo(json.dumps({"schedule": s, "firings": recent}, indent=2))
        return
    for key in (
        "id",
        "name",
        "cron_expression",
        "timezone",
        "target_label",
        "host_ids",
        "enabled",
        "runs",
        "max_runs",
        "end_at",
        "misfire_policy",
        "last_run",
        "last_status",
        "next_run",
        "created_by",
    ):
        _console.print(f"{key:16} {escape(str(s.get(key)))}")
    table = Table("due", "status", "execution", "execution status", "version", "reason")
    for f in recent:
        table.add_row(
            f["due_at"] + (" (run now)" if f["manual"] else ""),
            f["status"],
            f["execution_id"] or "-",
            f["execution_status"] or "-",
            str(f["script_version"] or "-"),
            escape(f["reason"] or ""),
        )
    _console.print(table)


def _act(name: str, action: str, url: str | None, as_json: bool) -> None:
    client = ApiClient(url)
    s = client.request("GET", f"{_BASE}/{name}")
    result = client.request("POST", f"{_BASE}/{s['id']}/{action}")
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif action == "run-now":
        _console.print(f"execution {result['id']}: {result['status']}")
    else:
        _console.print(f"schedule {escape(result['name'])}: next run {_when(result)}")


@app.command("pause")
def pause(name: Name, url: Url = None, as_json: AsJson = False) -> None:
    """Stop firing (ticks while paused are not owed)."""
    _act(name, "pause", url, as_json)


@app.command("resume")
def resume(name: Name, url: Url = None, as_json: AsJson = False) -> None:
    """Fire again from the next tick after now."""
    _act(name, "resume", url, as_json)


@app.command("run-now")
def run_now(name: Name, url: Url = None, as_json: AsJson = False) -> None:
    """Start one execution now, outside the cron."""
    _act(name, "run-now", url, as_json)


@app.command("delete")
def delete(name: Name, url: Url = None) -> None:
    """Delete the schedule and its firings (the executions it started stay)."""
    client = ApiClient(url)
    s = client.request("GET", f"{_BASE}/{name}")
    client.request("DELETE", f"{_BASE}/{s['id']}")
    _console.print(f"schedule {escape(s['name'])} deleted")
