"""``muster workflow run|plan FILE -i INVENTORY``: workflows in this process.

``run`` drives the definition through the same engine as the library and the
server (:class:`muster.engine.workflow.WorkflowEngine`), over SSH or local
hosts, and exits 0 only when the instance succeeded. ``plan`` is a dry run:
per step and host the hosts selected, the rendered body (secrets masked), the
shell, the throttling and what the step would wait for; nothing is sent.

In a local run nobody else can vote: an approval step is approved by the
operator with ``--approve STEP`` (recorded as the user running the command),
and one that is not is rejected at once, following its failure route.

The server commands (push, start, pause, ...) are registered by
:mod:`muster.cli.workflow_client_cmd`.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from muster.cli.common import (
    EXIT_HOSTS_FAILED,
    AuditFileOption,
    NoAuditOption,
    fail,
    open_local_audit,
)
from muster.cli.workflow_client_cmd import register

__all__ = ["app"]

app = typer.Typer(help="Run, preview and manage workflows.", no_args_is_help=True)
_console = Console(highlight=False)

File = Annotated[Path, typer.Argument(help="Workflow definition (YAML or JSON).")]
Inventories = Annotated[
    list[Path] | None,
    typer.Option("-i", "--inventory", help="Ansible INI/YAML or OpenSSH config; repeatable."),
]
Params = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="Workflow parameter NAME=VALUE.")
]
Targets = Annotated[
    str | None,
    typer.Option("--targets", help="Selector for steps that name no targets (default: all)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _load(file: Path, inventory: list[Path] | None, param: list[str] | None) -> Any:
    from muster.cli.run_cmd import parse_params
    from muster.domain.inventory import Inventory
    from muster.domain.params import coerce_values
    from muster.domain.workflows import load_workflow_text, validate
    from muster.errors import MusterError

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from exc
    try:
        workflow = load_workflow_text(text, source=str(file))
        graph = validate(workflow)
        values = coerce_values(workflow.parameters, parse_params(param or []))
        if inventory:
            from muster.engine.inventory_files import load_inventories

            inv = load_inventories(inventory)
        else:
            inv = Inventory()
    except MusterError as exc:
        raise fail(str(exc)) from exc
    return workflow, graph, values, inv


def plan(
    file: File,
    inventory: Inventories = None,
    param: Params = None,
    targets: Targets = None,
    as_json: AsJson = False,
) -> None:
    """Preview a workflow per step and host; nothing is queued or sent."""
    from muster.domain.workflows.preview import preview_workflow

    workflow, graph, values, inv = _load(file, inventory, param)
    steps = preview_workflow(graph, inv, values, targets=targets or "all")
    if as_json:
        doc = {"workflow": workflow.name, "steps": [s.to_dict() for s in steps]}
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    _console.print(f"[bold]workflow {escape(workflow.name)}[/]: {len(steps)} step(s), dry run")
    for s in steps:
        head = f"\n[bold]{escape(s.id)}[/] ({s.type})"
        if s.name:
            head += f" {escape(s.name)}"
        _console.print(head)
        for wait in s.waits_for:
            _console.print(f"  waits for: {escape(wait)}")
        for where, target in s.routes.items():
            _console.print(f"  {where} -> {escape(target)}")
        if s.problem:
            _console.print(f"  [red]problem:[/] {escape(s.problem)}")
        if s.shell is None:
            continue
        t = s.throttle
        _console.print(
            f"  hosts ({len(s.hosts)}): {escape(', '.join(s.hosts))}\n"
            f"  shell {s.shell}, timeout {s.timeout:g}s, forks {t.get('forks') or 'default'}, "
            f"per group {t.get('per_group') or '-'}, delay {t.get('delay') or 0:g}s"
        )
        for host, why in s.skipped.items():
            _console.print(f"  [yellow]skipped[/] {escape(host)}: {escape(why)}")
        by_body: dict[str, list[str]] = {}
        for host, body in s.bodies.items():
            by_body.setdefault(body, []).append(host)
        for body, hosts in by_body.items():
            _console.print(f"  on {escape(', '.join(hosts))}:")
            for line in body.splitlines() or [""]:
                _console.print(f"    | {escape(line)}")
        if s.env:
            shown = ", ".join(f"{k}={v}" for k, v in s.env.items())
            _console.print(f"  env: {escape(shown)}")


def run(
    file: File,
    inventory: Inventories = None,
    param: Params = None,
    targets: Targets = None,
    approve: Annotated[
        list[str] | None,
        typer.Option("--approve", help="Approve this approval step (repeatable)."),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Approve every approval step ahead."),
    ] = False,
    forks: Annotated[int, typer.Option(help="Default hosts running at once per step.", min=1)] = 50,
    user: Annotated[str | None, typer.Option("--user", "-u", help="SSH user.")] = None,
    key: Annotated[
        list[str] | None, typer.Option("--key", help="SSH private key file; repeatable.")
    ] = None,
    known_hosts: Annotated[str | None, typer.Option(help="known_hosts file.")] = None,
    as_json: AsJson = False,
    audit_file: AuditFileOption = None,
    no_audit: NoAuditOption = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Rollouts: write the full JSON result, evidence included, here."
        ),
    ] = None,
) -> None:
    """Run a workflow in this process; exits 0 when it succeeded, 1 when not.

    A workflow with a ``rollout:`` runs wave by wave (gates, soak, threshold,
    windows, rollback); Ctrl-C pauses it on a terminal and asks (without one it
    aborts, no rollback); SIGUSR1/SIGUSR2 pause and resume. Every host run is
    recorded in the local audit file (see --audit-file).
    """
    from muster.app import SshOptions, default_transports
    from muster.domain.hosts import TransportKind
    from muster.engine.dispatcher import DispatchPolicy
    from muster.engine.local_audit import audited
    from muster.engine.workflow import WorkflowEngine
    from muster.testing import InMemoryStore

    workflow, graph, values, inv = _load(file, inventory, param)
    ssh = SshOptions(known_hosts=known_hosts, username=user, client_keys=tuple(key or ()))
    from muster.domain.rollout_plan import rollout_keys

    if rollout_keys(workflow):
        # Waves, before/after captures and wave windows live in the rollout engine;
        # the plain DAG engine would ignore them.
        from muster.cli.workflow_rollout import run_rollout

        run_rollout(
            workflow,
            inv,
            values,
            targets=targets,
            forks=forks,
            ssh=ssh,
            as_json=as_json,
            report=report,
            audit=open_local_audit(audit_file, no_audit),
            approve=approve or (),
            yes=yes,
        )
        return
    if report is not None:
        raise fail(
            f"--report: workflow {workflow.name!r} has no rollout:, verifications: or "
            "windows: to report on"
        )
    approved = set(approve or ())
    unknown = sorted(a for a in approved if a not in graph.steps or graph.steps[a].approval is None)
    if unknown:
        raise fail(f"--approve {unknown[0]}: no approval step of that id")
    hosts = inv.all_hosts() if inv.all_hosts() else []
    kinds = {h.transport for h in hosts} | {TransportKind.LOCAL}
    operator = getpass.getuser()
    log = open_local_audit(audit_file, no_audit)

    def show(instance_id: str, state: Any, moved: frozenset[str]) -> None:
        if as_json:
            return
        for sid in sorted(moved, key=graph.order.index):
            st = state.steps[sid]
            note = f": {st.message}" if st.message else ""
            _console.print(f"{escape(sid)} {st.status.value}{escape(note)}")

    async def main() -> Any:
        transports = audited(default_transports(ssh, kinds=kinds), log)
        engine = WorkflowEngine(
            transports,
            inv,
            store=InMemoryStore(),
            policy=DispatchPolicy(forks=forks),
            observer=show,
        )
        try:
            iid = await engine.start(
                workflow, params=values, targets=targets or "all", created_by="muster-cli"
            )
            while True:
                run_state = engine.get(iid)
                if run_state.status.terminal:
                    break
                for sid in engine.pending_approvals(iid):
                    ok = yes or sid in approved
                    why = "" if ok else "not approved with --approve (or --yes)"
                    await engine.settle_approval(iid, sid, ok, operator, why)
                await engine.wait_for(
                    iid,
                    lambda s: s.status.terminal or bool(engine.pending_approvals(iid)),
                    timeout=None,
                )
            return await engine.wait(iid)
        finally:
            await engine.close()
            for t in transports.values():
                await t.close()

    try:
        result = asyncio.run(main())
    finally:
        if log is not None:
            log.close()
    if as_json:
        doc = {
            "id": result.id,
            "workflow": workflow.name,
            "status": result.status.value,
            "message": result.message,
            "steps": [result.steps[s].to_dict() for s in graph.order],
            "results": {k: v.to_dict() for k, v in result.results.items()},
            "successful_servers": result.successful_servers,
            "failed_servers": result.failed_servers,
        }
        json.dump(doc, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        _console.print(
            f"\n[bold]workflow {escape(workflow.name)} {result.status.value}[/]"
            + (f": {escape(result.message)}" if result.message else "")
        )
        _console.print(
            f"hosts: {len(result.successful_servers)} succeeded, "
            f"{len(result.failed_servers)} did not"
            + (f" ({escape(', '.join(result.failed_servers))})" if result.failed_servers else "")
        )
    if result.status.value != "succeeded":
        raise typer.Exit(EXIT_HOSTS_FAILED)


def forecast(
    file: File,
    inventory: Inventories = None,
    param: Params = None,
    targets: Targets = None,
    days: Annotated[
        int, typer.Option("--days", help="How far ahead to look for windows.", min=1)
    ] = 30,
    as_json: AsJson = False,
) -> None:
    """When each rollout wave would start given the maintenance windows, and which
    waves will not fit; exits 1 when one will not. Nothing runs."""
    from muster.cli.workflow_rollout import forecast_rollout_file

    workflow, graph, values, inv = _load(file, inventory, param)
    forecast_rollout_file(workflow, graph, inv, values, targets=targets, days=days, as_json=as_json)


app.command("run")(run)
app.command("plan")(plan)
app.command("forecast")(forecast)
register(app)
