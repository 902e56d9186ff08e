"""``muster run --waves ...``: one command or script, rolled out wave by wave.

The run becomes a generated one-task rollout workflow
(:func:`muster.domain.workflows.adhoc.adhoc_workflow`) driven by the same
:class:`~muster.engine.rollout.RolloutEngine` and presented by the same code as
``muster workflow run`` (:func:`muster.cli.workflow_rollout.run_rollout`): wave
progress on the terminal, the rollout document with ``--json``, exit 1 when the
rollout did not succeed. Throttling (``--forks``, ``--per-group``, ``--delay``)
holds inside each wave; maintenance windows (``--window``, ``muster_window``)
gate each wave's start: ``wait`` waits for them, ``fail`` stops the rollout at a
wave outside them, ``ignore`` ignores them.

Everything is checked before a host is contacted, and each problem is named by
its option.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from muster.cli.common import EXIT_HOSTS_FAILED, fail, open_local_audit, pick_hosts
from muster.domain.durations import parse_duration
from muster.domain.hosts import Host
from muster.engine.windows import WindowMode
from muster.errors import MusterError

if TYPE_CHECKING:  # the workflow parser loads only when a rollout is asked for
    from muster.domain.workflows.adhoc import AdhocRollout

__all__ = [
    "AutoRollbackOption",
    "MaxFailuresOption",
    "RollbackOption",
    "SoakOption",
    "ThresholdScopeOption",
    "VerifyOption",
    "WavesOption",
    "rollout_options",
    "run_in_waves",
]

_PANEL = "Rollout in waves"
WavesOption = Annotated[
    str | None,
    typer.Option(
        "--waves",
        help="Roll out in waves, canary first: host counts, percents or selectors, "
        "e.g. 1,10%,50%,100% or canary,web,100% (several selectors in one wave: "
        "'\\[\\[web01, web02], db, \"100%\"]'). Each wave starts when the previous passed.",
        rich_help_panel=_PANEL,
    ),
]
MaxFailuresOption = Annotated[
    str | None,
    typer.Option(
        "--max-failures",
        help="Failed hosts tolerated (count N or percent P%); more stops the rollout. "
        "Default 0: the first failed host stops it.",
        rich_help_panel=_PANEL,
    ),
]
ThresholdScopeOption = Annotated[
    str | None,
    typer.Option(
        "--threshold-scope",
        help="Count --max-failures per wave (default) or over the whole rollout.",
        rich_help_panel=_PANEL,
    ),
]
SoakOption = Annotated[
    str | None,
    typer.Option(
        "--soak",
        help="Wait this long after a wave passed (e.g. 5m), run --verify again, then go on.",
        rich_help_panel=_PANEL,
    ),
]
VerifyOption = Annotated[
    str | None,
    typer.Option(
        "--verify",
        help="Command run on each wave's hosts after it; non-zero fails the wave's gate.",
        rich_help_panel=_PANEL,
    ),
]
RollbackOption = Annotated[
    str | None,
    typer.Option(
        "--rollback",
        help="Command undoing the change, run on the hosts already changed, newest wave "
        "first, when the rollout stops.",
        rich_help_panel=_PANEL,
    ),
]
AutoRollbackOption = Annotated[
    bool | None,
    typer.Option(
        "--auto-rollback/--no-auto-rollback",
        help="Roll back at once when the rollout stops (default: on with --rollback).",
        show_default=False,
        rich_help_panel=_PANEL,
    ),
]


def rollout_options(
    waves: str | None,
    max_failures: str | None,
    threshold_scope: str | None,
    soak: str | None,
    verify: str | None,
    rollback: str | None,
    auto_rollback: bool | None,
) -> AdhocRollout | None:
    """The rollout asked for, or None; a rollout option without ``--waves`` is refused."""
    from muster.domain.workflows.adhoc import AdhocRollout

    if waves is None:
        given = {
            "--max-failures": max_failures,
            "--threshold-scope": threshold_scope,
            "--soak": soak,
            "--verify": verify,
            "--rollback": rollback,
            "--auto-rollback/--no-auto-rollback": auto_rollback,
        }
        for option, value in given.items():
            if value is not None:
                raise fail(f"{option} applies to a rollout: give --waves too (e.g. 1,50%,100%)")
        return None
    return AdhocRollout(
        waves=waves,
        max_failures=max_failures,
        threshold_scope=threshold_scope or "wave",
        soak=soak,
        verify=verify,
        rollback=rollback,
        auto_rollback=auto_rollback,
    )


def _refuse_view_options(**given: object) -> None:
    for option, value in given.items():
        if value not in (None, False):
            name = "--" + option.replace("_", "-")
            raise fail(
                f"{name} does not apply with --waves: a rollout prints its waves "
                "(--json prints the rollout document)"
            )


def _windows(specs: list[str], mode: WindowMode, hosts: list[Host]) -> dict[str, str]:
    """``--window`` and ``muster_window`` as a workflow's ``windows:`` (selector -> spec).

    Inside a rollout a window gates each wave's start (the wave must fit it);
    `` stop`` at the end of a spec, which stops hosts at the close of a plain
    run's window, has no meaning there and is dropped.
    """
    from muster.cli.run_windows import HOST_VAR

    if mode is WindowMode.IGNORE:
        return {}

    def clean(spec: str) -> str:
        text = spec.strip()
        return text[: -len(" stop")] if text.endswith(" stop") else text

    out: dict[str, str] = {}
    if specs:
        out["*"] = "; ".join(clean(s) for s in specs)
    for host in hosts:
        raw = str(host.vars.get(HOST_VAR) or "")
        mine = [clean(s) for s in raw.split(";") if s.strip()]
        if mine:
            out[host.name] = "; ".join(mine)
    return out


def _check_selector_waves(waves: str, hosts: list[Host], selector: str) -> None:
    """A selector wave that picks none of the targeted hosts is a typo, not an empty wave."""
    from muster.domain.inventory import Inventory
    from muster.domain.selectors import select
    from muster.domain.workflows.adhoc import wave_items

    inventory = Inventory()
    for host in hosts:
        inventory.add_host(host)
    for i, item in enumerate(wave_items(waves), 1):
        if isinstance(item, int) or (isinstance(item, str) and item.strip().endswith("%")):
            continue
        names = [item] if isinstance(item, str) else [str(x) for x in item]
        try:
            picked = select(inventory, ",".join(names))
        except MusterError as exc:
            raise fail(f"--waves: wave {i} ({item!r}): {exc}") from exc
        if not picked:
            raise fail(f"--waves: wave {i} ({item!r}) selects none of the hosts {selector!r} picks")


def run_in_waves(
    options: AdhocRollout,
    *,
    selector: str,
    command: list[str] | None,
    inventory: list[Path],
    script: Path | None,
    params: dict[str, str],
    shell: str | None,
    timeout: str | None,
    forks: int,
    per_group: int | None,
    delay: str,
    ssh: Mapping[str, Any],
    as_json: bool,
    window: list[str],
    window_policy: WindowMode,
    audit_file: Path | None,
    no_audit: bool,
    view: Mapping[str, object],
) -> None:
    """Check everything, then run the rollout (see the module docstring); raises typer.Exit."""
    from muster.app import SshOptions
    from muster.cli.workflow_rollout import run_rollout
    from muster.domain.workflows.adhoc import AdhocTask, adhoc_workflow
    from muster.engine.dispatcher import DispatchPolicy
    from muster.engine.runner import script_job
    from muster.engine.script_files import load_script_file

    dry_run = bool(view.get("dry_run"))
    _refuse_view_options(**{k: v for k, v in view.items() if k != "dry_run"})
    resolver = None
    try:
        seconds = parse_duration(timeout, field="timeout") if timeout else None
        if script is not None:
            version = load_script_file(script, shell=shell, timeout=seconds)
            script_job(version, params)  # bad parameters fail now, before any host
            task = AdhocTask(
                script=version.name,
                shell=str(version.shell),
                timeout=version.timeout,
                parameters=params,
            )

            def resolver(ref: object) -> Any:
                return version

        else:
            if params:
                raise fail("--param only applies to --script")
            assert command
            task = AdhocTask(command=" ".join(command), timeout=seconds or 300)
        policy = DispatchPolicy(
            forks=forks, per_group=per_group, delay=parse_duration(delay, field="delay")
        )
        hosts = pick_hosts(inventory, selector)
        if not hosts:
            raise fail(f"selector {selector!r} matches no host", code=EXIT_HOSTS_FAILED)
        options = dataclasses.replace(options, windows=_windows(window, window_policy, hosts))
        workflow = adhoc_workflow(task, options)
        _check_selector_waves(options.waves, hosts, selector)
        if dry_run:
            _preview(workflow, hosts, policy, as_json)
            return
    except MusterError as exc:
        raise fail(str(exc)) from exc
    run_rollout(
        workflow,
        hosts,
        {},
        targets=None,
        forks=forks,
        ssh=SshOptions(**ssh),
        as_json=as_json,
        report=None,
        audit=open_local_audit(audit_file, no_audit),
        policy=policy,
        scripts=resolver,
        window_wait=window_policy is not WindowMode.FAIL,
    )


def _preview(workflow: Any, hosts: list[Host], policy: Any, as_json: bool) -> None:
    """``--dry-run --waves``: the waves as the engine will plan them (the same
    :func:`~muster.domain.rollout_plan.plan_rollout`), when each could start given
    the windows, and what runs; nothing is sent."""
    import datetime as dt
    import json
    import sys

    from rich.console import Console

    from muster.domain.rollout_plan import plan_rollout
    from muster.domain.workflows import validate
    from muster.domain.workflows.rollout_parse import rollout_to_dict

    plan = plan_rollout(workflow, validate(workflow), hosts, {}, None, dt.datetime.now(dt.UTC))
    steps = {s.id: s.command or (s.script.name if s.script else "") for s in workflow.steps}
    rollback = {s.id: s.rollback for s in workflow.steps if s.rollback}
    if as_json:
        doc = {
            "dry_run": True,
            "steps": steps,
            "rollback": rollback,
            "rollout": rollout_to_dict(workflow.rollout),
            "throttle": {
                "forks": policy.forks,
                "per_group": policy.per_group,
                "delay": policy.delay,
            },
            "waves": [f.to_dict() for f in plan.forecast],
            "unplanned": list(plan.unplanned),
        }
        json.dump(doc, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    out = Console(highlight=False)
    out.print(f"dry run: {len(plan.waves)} wave(s) over {len(hosts)} host(s) (nothing is sent)")
    for item in plan.forecast:
        fit = item.fit
        note = "" if fit.status.value == "now" else f" ({fit.status.value}: {fit.reason})"
        out.print(
            f"wave {item.index + 1}/{len(plan.forecast)}: {', '.join(item.hosts)}{note}",
            markup=False,
        )
    if plan.unplanned:
        out.print(f"not in any wave: {', '.join(plan.unplanned)}", markup=False)
    for sid, text in steps.items():
        out.print(f"{sid}: {text}", markup=False)
    for sid, text in rollback.items():
        out.print(f"rollback of {sid}: {text}", markup=False)
