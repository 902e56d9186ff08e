"""``muster workflow run`` for a workflow with a ``rollout:``, and ``muster workflow
forecast``: progressive rollouts from the command line.

A definition that declares waves runs through
:class:`muster.engine.rollout.RolloutEngine` (the library's
``muster.Engine(...).execute`` runs the same), wave by wave with its gates,
soak, threshold, windows and rollback; one without runs as a plain DAG in
:mod:`muster.cli.workflow_cmd`. The exit code follows ``muster run``: 0 when
the rollout succeeded, 1 when it did not (failed, rolled back, rollback
failed, aborted), 2 for bad input.

Ctrl-C on a terminal pauses and asks; without one it aborts without rollback,
as the engine's ``abort`` does; SIGUSR1 and SIGUSR2 pause and resume (see
:mod:`muster.cli.rollout_control`).

``forecast`` plans the rollout with :func:`muster.domain.rollout_plan.plan_rollout`,
the function the engine plans with, so what it prints is what a run now would wait for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any

import typer
from rich.console import Console

from muster.cli.common import EXIT_HOSTS_FAILED, err_console, fail
from muster.cli.rollout_view import RolloutProgress, forecast_view, summary_view

__all__ = ["forecast_rollout_file", "report_document", "run_rollout"]


def report_document(run: Any, workflow: Any = None, params: Any = None) -> dict[str, Any]:
    """The full result as JSON, the document ``muster rollout publish`` takes: waves,
    gates, servers, rollback per host, and each host's verification evidence
    (before/after captures, checks, pass/fail, drift), secret parameters masked."""
    from muster.domain.rollout_report import mask_document
    from muster.engine.rollout_report import report_document as publishable
    from muster.engine.rollout_report import secret_values

    doc = publishable(run, workflow=workflow, params=params)
    hidden = secret_values(workflow, params) if workflow is not None else []
    doc["evidence"] = mask_document({"e": run.evidence_report()}, hidden)["e"]
    return doc


def _open_report(path: Path) -> IO[str]:
    """Opened before anything runs: a report that cannot be written is bad input,
    not a surprise after an hour of waves."""
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise fail(f"--report {path}: cannot write: {exc.strerror}") from exc


def run_rollout(
    workflow: Any,
    inventory: Any,
    values: dict[str, Any],
    *,
    targets: str | None,
    forks: int,
    ssh: Any,
    as_json: bool,
    report: Path | None,
    audit: Any = None,
    policy: Any = None,
    scripts: Any = None,
    window_wait: bool = True,
    approve: Collection[str] = (),
    yes: bool = False,
) -> None:
    """Run ``workflow``'s rollout in this process and present it; raises typer.Exit.

    ``inventory`` is an Inventory or the hosts themselves; ``policy`` (else
    ``forks`` alone) throttles each wave; ``scripts`` resolves named script steps;
    approval steps are decided once by the operator (``approve``, ``yes``, else the
    terminal; :mod:`muster.cli.rollout_approval`).
    Signals and Ctrl-C steer the run (:mod:`muster.cli.rollout_control`).
    """
    from muster.app import default_transports
    from muster.cli.rollout_approval import cli_approver
    from muster.cli.rollout_control import RolloutControl
    from muster.domain.hosts import TransportKind
    from muster.domain.workflows import StepType
    from muster.engine.dispatcher import DispatchPolicy
    from muster.engine.local_audit import audited
    from muster.engine.rollout import RolloutEngine
    from muster.errors import MusterError
    from muster.testing import InMemoryStore

    steps = {s.id: s for s in workflow.steps}
    unknown = sorted(a for a in approve if a not in steps or steps[a].type is not StepType.APPROVAL)
    if unknown:
        raise fail(f"--approve {unknown[0]}: no approval step of that id")
    out = _open_report(report) if report is not None else None
    console = Console(highlight=False, stderr=as_json)
    progress = RolloutProgress(console)
    hosts = inventory.all_hosts() if hasattr(inventory, "all_hosts") else list(inventory)
    kinds = {h.transport for h in hosts} | {TransportKind.LOCAL}

    async def main() -> Any:
        transports = audited(default_transports(ssh, kinds=kinds), audit)
        controls: list[RolloutControl] = []
        engine = RolloutEngine(
            transports,
            inventory,
            store=InMemoryStore(),
            scripts=scripts,
            policy=policy or DispatchPolicy(forks=forks),
            window_wait=window_wait,
            approver=cli_approver(lambda: controls[0] if controls else None, approve, yes=yes),
        )
        tty = sys.stdin is not None and sys.stdin.isatty()
        control = RolloutControl(engine, err_console, interactive=tty)
        controls.append(control)

        def observe(run: Any) -> None:
            progress(run)
            control.observe(run)

        engine.observer = observe
        control.install()
        try:
            run = await engine.run(workflow, params=values, targets=targets)
            return await control.finish(run)
        finally:
            control.uninstall()
            await engine.close()
            for t in transports.values():
                await t.close()

    try:
        result = asyncio.run(main())
    except MusterError as exc:
        if out is not None:
            out.close()
        raise fail(str(exc)) from exc
    finally:
        if audit is not None:
            audit.close()
    if out is not None:
        with out:
            json.dump(report_document(result, workflow, values), out, indent=2, default=str)
            out.write("\n")
    if as_json:
        json.dump(result.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        console.print(summary_view(result))
        if report is not None:
            console.print(f"report written to {report}")
    if result.status.value != "succeeded":
        raise typer.Exit(EXIT_HOSTS_FAILED)


def forecast_rollout_file(
    workflow: Any,
    graph: Any,
    inventory: Any,
    values: dict[str, Any],
    *,
    targets: str | None,
    days: int,
    as_json: bool,
    now: dt.datetime | None = None,
) -> None:
    """Print when each wave would start if the rollout began ``now``; exit 1 when a
    wave will not fit within ``days``."""
    from muster.domain.rollout_plan import plan_rollout
    from muster.errors import MusterError

    at = now or dt.datetime.now(dt.UTC)
    try:
        plan = plan_rollout(
            workflow, graph, inventory, values, targets, at, horizon=dt.timedelta(days=days)
        )
    except MusterError as exc:
        raise fail(str(exc)) from exc
    stuck = [f.index + 1 for f in plan.forecast if f.will_not_fit]
    if as_json:
        doc = {
            "workflow": workflow.name,
            "now": at.isoformat(),
            "days": days,
            "waves": [f.to_dict() for f in plan.forecast],
            "unplanned": list(plan.unplanned),
            "will_not_fit": stuck,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        Console(highlight=False).print(forecast_view(workflow.name, plan.forecast, plan.unplanned))
    if stuck:
        if not as_json:
            err_console.print(
                f"[bold red]{len(stuck)} wave(s) will not fit within {days} day(s):[/] "
                + ", ".join(str(i) for i in stuck)
            )
        raise typer.Exit(EXIT_HOSTS_FAILED)
