"""A rendered workflow step, as the executions the server's workers run.

The durable driver (:mod:`muster.services.workflow_driver`) renders a host
step's attempt per host (:func:`~muster.domain.workflows.render.prepare_step`);
this module turns those plans into executions of kind ``plan``: one per
distinct plan, the run id aside (every host of a step whose plans differ only
by their run id shares one execution, and the worker puts each host run's id
back where the token stands). Hosts without the step's shell are recorded as
skipped, as the in-process dispatcher does. Each execution asks the approval
gate for its own hosts, so script and group approval rules apply to workflow
steps as to any execution.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from muster.domain.approval_rules import ApprovalNeed, approval_policy
from muster.domain.hosts import Host
from muster.domain.planbuilder import ENV_PREFIX, RUN_ID_ENV, RUN_ID_TOKEN
from muster.domain.scripts import ScriptVersion
from muster.domain.secret import Secret
from muster.domain.states import Priority
from muster.domain.throttle import group_key
from muster.domain.workflows import StepType
from muster.domain.workflows.render import StepLaunch
from muster.engine.workflow_store import InstanceRecord
from muster.services.actor import Actor
from muster.store.base import ExecutionKind, HostTarget, NewExecution

__all__ = ["step_executions"]

#: (kind, hosts, script id) -> what approval running them needs, if any.
NeedFor = Callable[[str, Sequence[Host], str | None], ApprovalNeed | None]

_Group = tuple[dict[str, Any], dict[str, object], list[Host]]


def step_executions(
    launch: StepLaunch,
    hosts: Sequence[Host],
    *,
    record: InstanceRecord,
    pin: Mapping[str, Any],
    step_type: StepType,
    idempotent: bool,
    actor: Actor,
    script: ScriptVersion | None,
    need: NeedFor,
) -> list[NewExecution]:
    """The executions that run ``launch`` on ``hosts`` (see the module docstring)."""
    groups, run_ids, reasons = _plan_groups(launch, hosts)
    kind = (
        "script"
        if step_type is StepType.SCRIPT and script is not None
        else ("job" if step_type is StepType.JOB else "command")
    )
    out: list[NewExecution] = []
    for n, (plan_data, env, members) in enumerate(groups.values()):
        needed = need(kind, members, pin.get("script_id"))
        workflow_info: dict[str, Any] = {
            "instance_id": record.id,
            "workflow": record.workflow,
            "step": launch.step_id,
            "attempt": launch.attempt,
        }
        if n == 0 and launch.problems:
            workflow_info["problems"] = dict(launch.problems)
        out.append(
            NewExecution(
                kind=ExecutionKind.PLAN,
                targets=[
                    HostTarget(h.id, h.name, reasons.get(h.name), group_key(h.groups))
                    for h in members
                ],
                timeout=launch.timeout,
                priority=Priority.NORMAL,
                parameters=env,
                script_id=pin.get("script_id"),
                script_version=pin.get("number"),
                content_hash=pin.get("content_hash"),
                idempotent=idempotent or (script.idempotent if script is not None else False),
                requires_approval=needed is not None,
                policy={
                    "plan": plan_data,
                    "run_ids": {h.name: run_ids[h.name] for h in members if h.name in run_ids},
                    "workflow": workflow_info,
                    **approval_policy(needed),
                },
                shell=launch.shell.value,
                description=launch.description,
                requested_by=actor.name or record.created_by,
                throttle=launch.throttle,
            )
        )
    return out


def _plan_groups(
    launch: StepLaunch, hosts: Sequence[Host]
) -> tuple[dict[str, _Group], dict[str, str], dict[str, str]]:
    """Hosts grouped by identical plan and environment (run id replaced by the
    token), each host's run id, and why a host is skipped."""
    groups: dict[str, _Group] = {}
    run_ids: dict[str, str] = {}
    skipped: list[tuple[Host, str]] = []
    for host in hosts:
        if host.name in launch.problems:
            continue
        if not host.has_shell(launch.shell.value):
            have = ", ".join(host.effective_shells) or "none"
            skipped.append(
                (host, f"host does not advertise shell {launch.shell.value} (has: {have})")
            )
            continue
        plan = launch.plans[host.name]
        run_id = str(plan.env.get(RUN_ID_ENV, "")) if RUN_ID_ENV in plan.env else ""
        if run_id:
            run_ids[host.name] = run_id
        text = json.dumps(plan.to_dict(), sort_keys=True)
        env: dict[str, object] = {}
        for k, v in plan.env.items():
            if k == RUN_ID_ENV:
                v = RUN_ID_TOKEN
            elif run_id and isinstance(v, str):
                v = v.replace(run_id, RUN_ID_TOKEN)
            env[f"{ENV_PREFIX}{k}"] = v
        if run_id:
            text = text.replace(run_id, RUN_ID_TOKEN)
        revealed = {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in sorted(env.items())}
        key = text + "\0" + json.dumps(revealed)
        if key not in groups:
            groups[key] = (json.loads(text), env, [])
        groups[key][2].append(host)
    if skipped:
        if groups:
            next(iter(groups.values()))[2].extend(h for h, _ in skipped)
        else:
            groups["skipped"] = ({"files": [], "commands": []}, {}, [h for h, _ in skipped])
    return groups, run_ids, {h.name: why for h, why in skipped}
