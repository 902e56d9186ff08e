"""``muster exec``: start and follow executions on a server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from muster.cli.client import ApiClient
from muster.cli.common import EXIT_HOSTS_FAILED, fail
from muster.cli.host_text import LineSplitter, terminal_safe
from muster.cli.human import FEW_HOSTS, SUMMARY_EVENTS, HostEnd, HumanReport, OutputMode, Terminal
from muster.cli.output_files import OutputDir
from muster.cli.present import summary_table
from muster.cli.run_cmd import parse_params
from muster.cli.script_cmd import find_script
from muster.domain.durations import parse_duration
from muster.domain.states import HostRunState
from muster.errors import ValidationError

app = typer.Typer(help="Start, follow, cancel and retry executions.", no_args_is_help=True)
_console = Console()

Url = Annotated[str | None, typer.Option("--url", help="Server URL (or MUSTER_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OutputOption = Annotated[
    OutputMode | None,
    typer.Option(
        "--output",
        help=f"With --follow: grouped (the default above {FEW_HOSTS} hosts), full or none.",
        show_default=False,
    ),
]
StreamOption = Annotated[
    bool, typer.Option("--stream", help="With --follow: lines as they arrive, 'host | line'.")
]
OutputDirOption = Annotated[
    Path | None,
    typer.Option(
        "--output-dir", help="With --follow: every host's output in DIR/HOST.stdout|stderr."
    ),
]
_BASE = "/api/v1/automation/executions"
_TERMINAL = {"succeeded", "failed", "timed_out", "cancelled", "rejected", "skipped"}


@app.command("start")
def start(
    script: Annotated[str, typer.Argument(help="Script name or id.")],
    hosts: Annotated[str, typer.Option("--hosts", "-H", help="Comma-separated host names/ids.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE.")] = None,
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Follow it to the end, as `muster run` shows it.")
    ] = False,
    forks: Annotated[
        int | None, typer.Option(help="Hosts running at once (default: as workers allow).", min=1)
    ] = None,
    per_group: Annotated[
        int | None, typer.Option("--per-group", help="Hosts running at once per group.", min=1)
    ] = None,
    delay: Annotated[str | None, typer.Option(help="Time between host starts, e.g. 2s.")] = None,
    url: Url = None,
    as_json: AsJson = False,
    output: OutputOption = None,
    stream: StreamOption = False,
    output_dir: OutputDirOption = None,
) -> None:
    """Execute a saved script; the version is pinned by hash when the request is made.

    ``--forks``, ``--per-group`` and ``--delay`` are kept by the server's
    workers together, however many there are.
    """
    if (output is not None or stream or output_dir is not None) and not follow:
        raise fail("--output, --stream and --output-dir apply with --follow")
    if stream and output is not None:
        raise fail("--stream prints lines as they arrive: it does not go with --output")
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
    _console.print(escape(f"execution {result['id']}: {result['status']}"))
    for skipped in result.get("skipped_hosts") or []:
        _console.print(escape(f"  skipped {skipped}"), style="dim")
    if follow:
        files = _output_dir(output_dir)
        total = len(result.get("hosts") or []) or len(body["host_ids"])
        report = HumanReport(Terminal(), total, mode=output, stream=stream, output_dir=files)
        events = _follow(client, result["id"], report)
        report.close()
        _summary(client, result["id"], report, events)


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
    table = Table(title=escape(f"execution {data['id']}: {data['status']}"))
    for col in ("host", "state", "exit", "duration", "detail"):
        table.add_column(col, overflow="fold")
    for r in data.get("hosts") or data.get("host_results") or []:
        detail = r.get("waiting_reason") if r.get("state") in ("queued", "pending_approval") else ""
        if r.get("state") not in ("succeeded", "queued", "running", "pending_approval"):
            detail = r.get("message") or r.get("reason") or ""
        duration = r.get("duration")
        # A host's name and its run's message may carry what the host printed: plain,
        # terminal-safe text, as in the run summary.
        table.add_row(
            Text(terminal_safe(str(r.get("host")))),
            escape(str(r.get("state"))),
            "" if r.get("exit_code") is None else str(r["exit_code"]),
            "" if duration is None else f"{duration:.2f}s",
            Text(terminal_safe(str(detail or "")[:300])),
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
        report = HumanReport(Terminal(), 0, stream=True)
        _follow(client, execution_id, report)
        report.close()
        return
    data = client.request("GET", f"{_BASE}/{execution_id}")
    term = Terminal()
    for r in data.get("hosts") or data.get("host_results") or []:
        for stream in ("stdout", "stderr"):
            text = r.get(f"{stream}_tail") or r.get(stream) or ""
            mark = "|" if stream == "stdout" else "!"
            lines = LineSplitter(f"{terminal_safe(str(r.get('host', '?')))} {mark} ")
            term.write(lines.feed(text) + lines.close())


@app.command("cancel")
def cancel(execution_id: Annotated[str, typer.Argument()], url: Url = None) -> None:
    """Stop unstarted hosts and kill running ones."""
    data = ApiClient(url).request("POST", f"{_BASE}/{execution_id}/cancel")
    _console.print(escape(f"execution {execution_id}: {data.get('status', 'cancel requested')}"))


@app.command("retry")
def retry(execution_id: Annotated[str, typer.Argument()], url: Url = None) -> None:
    """Queue a new attempt on hosts that failed, timed out or were lost."""
    data = ApiClient(url).request("POST", f"{_BASE}/{execution_id}/retry")
    _console.print(escape(f"execution {execution_id}: {data.get('status', 'retried')}"))


def _follow(
    client: ApiClient, execution_id: str, report: HumanReport
) -> dict[str, tuple[list[dict[str, Any]], int]]:
    """Feed the server's event stream to ``report`` until the execution ends.

    A host's end is held back until its output is surely all in: the server
    reads host states after output, so output committed between that read
    and the state read follows the ``state`` event, in the very next output
    read. So a host ends once a state from a later read arrives (a larger
    event id), a keep-alive (the stream was idle), or the end.
    Returns each host's first events and their count, for the summary.
    """
    event, event_id = "", 0
    events: dict[str, tuple[list[dict[str, Any]], int]] = {}
    pending: list[tuple[int, dict[str, Any]]] = []

    def finish(before: int | None) -> None:
        keep = []
        for seen_at, payload in pending:
            if before is not None and seen_at >= before:
                keep.append((seen_at, payload))
                continue
            host = str(payload.get("host", "?"))
            first, count = events.get(host, ([], 0))
            report.finished(
                HostEnd(
                    host=host,
                    state=HostRunState(payload["state"]),
                    exit_code=payload.get("exit_code"),
                    reason=payload.get("reason"),
                    events=first,
                    event_count=count,
                )
            )
        pending[:] = keep

    for line in client.stream_lines(f"{_BASE}/{execution_id}/stream"):
        if line.startswith("id:"):
            event_id = int(line[3:].strip() or 0)
        elif line.startswith(": keep-alive"):
            finish(None)
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            payload = json.loads(line[5:].strip() or "{}")
            host = str(payload.get("host", "?"))
            if event == "output":
                stream = "stderr" if payload.get("stream") == "stderr" else "stdout"
                report.output(host, stream, str(payload.get("data", "")))
            elif event == "event" and isinstance(payload.get("data"), dict):
                first, count = events.get(host, ([], 0))
                if len(first) < SUMMARY_EVENTS:
                    first.append(payload["data"])
                events[host] = (first, count + 1)
            elif event == "state":
                finish(event_id)
                if payload.get("state") in _TERMINAL:
                    pending.append((event_id, payload))
            elif event == "end":
                break
    finish(None)
    return events


def _summary(
    client: ApiClient,
    execution_id: str,
    report: HumanReport,
    events: dict[str, tuple[list[dict[str, Any]], int]],
) -> None:
    """The closing table from the server's final view (durations, messages) and the
    events the stream carried; exits 1 when a host did not succeed."""
    data = client.request("GET", f"{_BASE}/{execution_id}")
    ends = []
    for r in data.get("hosts") or []:
        host = str(r.get("host"))
        first, count = events.get(host, ([], 0))
        seen = report.ends.get(host)
        ends.append(
            HostEnd(
                host=host,
                state=HostRunState(r["state"]),
                exit_code=r.get("exit_code"),
                duration=r.get("duration"),
                reason=r.get("reason"),
                message=r.get("message") or "",
                events=first,
                event_count=count,
                first_error=seen.first_error if seen is not None else "",
            )
        )
    sys.stdout.flush()
    _console.print(summary_table(ends, f"execution {data['id']}: {data['status']}"))
    if data["status"] in _TERMINAL and data["status"] != "succeeded":
        raise typer.Exit(EXIT_HOSTS_FAILED)


def _output_dir(directory: Path | None) -> OutputDir | None:
    if directory is None:
        return None
    try:
        return OutputDir(directory)
    except ValidationError as exc:
        raise fail(str(exc)) from exc
