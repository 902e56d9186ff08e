"""``muster script``: push, list, show, history and diff scripts on a server."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from muster.cli.client import ApiClient
from muster.cli.common import fail
from muster.engine.script_files import load_script_file
from muster.errors import MusterError

app = typer.Typer(help="Manage the server's script library.", no_args_is_help=True)
#: Script names, descriptions and bodies are user text: no Rich markup.
_console = Console(markup=False, highlight=False)

Url = Annotated[str | None, typer.Option("--url", help="Server URL (or MUSTER_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def find_script(client: ApiClient, ref: str) -> dict[str, Any]:
    """A script by id or by name."""
    scripts = client.request("GET", "/api/v1/automation/scripts")
    items = scripts["items"] if isinstance(scripts, dict) else scripts
    for s in items:
        if ref in (s.get("id"), s.get("name")):
            return dict(s)
    raise fail(f"no script named or with id {ref!r}", code=1)


@app.command("push")
def push(
    path: Annotated[Path, typer.Argument(help="Script file with an optional # muster: header.")],
    name: Annotated[str | None, typer.Option(help="Script name (default: file stem).")] = None,
    description: Annotated[
        str | None, typer.Option(help="Description (default: the header's, else kept).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag; repeatable (default: kept).")
    ] = None,
    requires_approval: Annotated[bool, typer.Option(help="Executions need approval.")] = False,
    url: Url = None,
) -> None:
    """Save a script: changed content becomes a new version, identical content nothing."""
    try:
        version = load_script_file(path)
    except MusterError as exc:
        raise fail(str(exc)) from exc
    body: dict[str, Any] = {
        "name": name or version.name,
        "shell": version.shell.value,
        "body": version.body,
        "parameters": [
            {
                "name": p.name,
                "type": p.type.value,
                "required": p.required,
                "default": p.default,
                "description": p.description,
                **({"choices": list(p.choices)} if p.choices else {}),
            }
            for p in version.parameters
        ],
        "timeout": version.timeout,
        "requires_approval": requires_approval or version.requires_approval,
    }
    if description is not None or version.description:
        body["description"] = description if description is not None else version.description
    if tag:
        body["tags"] = tag
    saved = ApiClient(url).request("POST", "/api/v1/automation/scripts", json=body)
    created = saved.get("created_version", True)
    verb = "saved as version" if created else "unchanged at version"
    _console.print(f"{saved['name']}: {verb} {saved.get('version')} ({saved.get('id')})")


@app.command("list")
def list_scripts(url: Url = None, as_json: AsJson = False) -> None:
    """Scripts in the library, with their current version."""
    data = ApiClient(url).request("GET", "/api/v1/automation/scripts")
    items = data["items"] if isinstance(data, dict) else data
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    table = Table()
    for col in ("name", "version", "shell", "approval", "tags", "id"):
        table.add_column(col)
    for s in items:
        table.add_row(
            s["name"],
            str(s.get("version")),
            s.get("shell", ""),
            "yes" if s.get("requires_approval") else "",
            ",".join(s.get("tags") or []),
            s["id"],
        )
    _console.print(table)


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="Script name or id.")],
    version: Annotated[int | None, typer.Option(help="Version number.")] = None,
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """A script's body and parameters (current version unless --version)."""
    client = ApiClient(url)
    script = find_script(client, ref)
    data = (
        client.request("GET", f"/api/v1/automation/scripts/{script['id']}/versions/{version}")
        if version
        else client.request("GET", f"/api/v1/automation/scripts/{script['id']}")
    )
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _console.print(
        f"{script['name']} v{data.get('version') or data.get('number')} "
        f"{data.get('shell')} sha256:{str(data.get('content_hash', ''))[:16]}"
    )
    for p in data.get("parameters") or []:
        flag = " (required)" if p.get("required") else ""
        _console.print(f"  ${{{p['name']}}}: {p['type']}{flag} {p.get('description') or ''}")
    lexer = "python" if data.get("shell") == "python" else "bash"
    _console.print(Syntax(data.get("body", ""), lexer, line_numbers=True))


@app.command("history")
def history(
    ref: Annotated[str, typer.Argument(help="Script name or id.")],
    url: Url = None,
    as_json: AsJson = False,
) -> None:
    """Every version, newest first."""
    client = ApiClient(url)
    script = find_script(client, ref)
    data = client.request("GET", f"/api/v1/automation/scripts/{script['id']}/versions")
    items = data["items"] if isinstance(data, dict) else data
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    table = Table(title=script["name"])
    for col in ("version", "hash", "created", "by"):
        table.add_column(col)
    for v in items:
        table.add_row(
            str(v.get("number") or v.get("version")),
            str(v.get("content_hash", ""))[:16],
            str(v.get("created_at", "")),
            str(v.get("created_by") or ""),
        )
    _console.print(table)


@app.command("diff")
def diff(
    ref: Annotated[str, typer.Argument(help="Script name or id.")],
    old: Annotated[int, typer.Argument(help="Older version number.")],
    new: Annotated[int | None, typer.Argument(help="Newer version (default: current).")] = None,
    url: Url = None,
) -> None:
    """Unified diff of two versions' bodies."""
    client = ApiClient(url)
    script = find_script(client, ref)
    base = f"/api/v1/automation/scripts/{script['id']}"
    a = client.request("GET", f"{base}/versions/{old}")
    b = client.request("GET", f"{base}/versions/{new}") if new else client.request("GET", base)
    lines = difflib.unified_diff(
        a["body"].splitlines(keepends=True),
        b["body"].splitlines(keepends=True),
        fromfile=f"{script['name']} v{old}",
        tofile=f"{script['name']} v{new or b.get('version')}",
    )
    text = "".join(lines)
    _console.print(Syntax(text, "diff") if text else "no difference in body")
