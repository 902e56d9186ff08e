"""A dry run of a workflow: per step and host, what would run, where, and what it waits for.

Nothing is queued or sent. Host steps are rendered by the same
:func:`~muster.domain.workflows.render.prepare_step` the drivers use, with
step results shown as ``<step_X.stdout>`` placeholders (quoted as a real
value would be); secrets never appear (they are environment references in
bodies and ``***`` in the environment shown).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from muster.domain.hosts import Host, skip_reason
from muster.domain.inventory import Inventory
from muster.domain.params import ParamValue
from muster.domain.scripts import ScriptVersion
from muster.domain.secret import Secret
from muster.domain.workflows.model import ScriptRef, StepType, WorkflowError
from muster.domain.workflows.render import PREVIEW, prepare_step, step_hosts
from muster.domain.workflows.validate import Graph
from muster.errors import ValidationError

__all__ = ["StepPreview", "preview_workflow"]


@dataclass(frozen=True, slots=True)
class StepPreview:
    id: str
    type: str
    name: str
    waits_for: tuple[str, ...]
    routes: Mapping[str, str]
    hosts: tuple[str, ...] = ()
    shell: str | None = None
    throttle: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    #: Rendered body (or command, or job description) per host.
    bodies: Mapping[str, str] = field(default_factory=dict)
    #: Environment names with values; secrets as ``***``.
    env: Mapping[str, str] = field(default_factory=dict)
    #: Hosts that would not run it, with the reason.
    skipped: Mapping[str, str] = field(default_factory=dict)
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "waits_for": list(self.waits_for),
            "routes": dict(self.routes),
            "hosts": list(self.hosts),
            "shell": self.shell,
            "throttle": dict(self.throttle),
            "timeout": self.timeout,
            "bodies": dict(self.bodies),
            "env": dict(self.env),
            "skipped": dict(self.skipped),
            "problem": self.problem,
        }


def _waits(graph: Graph, step_id: str) -> tuple[str, ...]:
    step = graph.steps[step_id]
    out: list[str] = []
    if step.depends_on:
        out.append("dependencies: " + ", ".join(step.depends_on))
    if step_id in graph.routed:
        sources = [
            f"{s.id}.{where}"
            for s in graph.workflow.steps
            for where, target in s.routes()
            if target == step_id
        ]
        out.append("runs only when routed to from " + ", ".join(sources))
    if step.approval is not None:
        a = step.approval
        deadline = f"; rejected {a.timeout:g}s after it opens" if a.timeout else "; no deadline"
        out.append(f"approval ({a.policy.value}) by {', '.join(a.approvers)}{deadline}")
    if step.delay is not None:
        d = step.delay
        out.append(f"delay until {d.until.isoformat()}" if d.until else f"delay {d.seconds:g}s")
    if step.conditional is not None:
        c = step.conditional
        out.append(
            f"decides {c.condition!r}: true -> {c.on_true or 'end'}, false -> {c.on_false or 'end'}"
        )
    if step.type.runs_on_hosts:
        out.append("maintenance windows of its hosts (checked by the server's queue)")
    return tuple(out)


def _env_shown(env: Mapping[str, str | Secret]) -> dict[str, str]:
    """The environment an operator set (parameters, env); not the variables that
    carry references or the run id, which say nothing in a dry run."""
    return {
        k: ("***" if isinstance(v, Secret) else v)
        for k, v in sorted(env.items())
        if not k.startswith("MUSTER_PARAM___WF") and k != "MUSTER_RUN_ID"
    }


def preview_workflow(
    graph: Graph,
    inventory: Inventory | Sequence[Host],
    params: Mapping[str, ParamValue],
    *,
    targets: str | None = None,
    scripts: Callable[[ScriptRef], ScriptVersion] | None = None,
) -> list[StepPreview]:
    """Every step in run order, as it would run now (``params`` already coerced)."""
    out: list[StepPreview] = []
    for step_id in graph.order:
        step = graph.steps[step_id]
        routes = {where: target for where, target in step.routes()}
        base = StepPreview(
            id=step.id,
            type=step.type.value,
            name=step.name,
            waits_for=_waits(graph, step_id),
            routes=routes,
        )
        if not step.type.runs_on_hosts:
            out.append(base)
            continue
        try:
            hosts = step_hosts(graph, step_id, inventory, params, targets)
            script = None
            if (
                step.type is StepType.SCRIPT
                and step.script is not None
                and step.script.body is None
            ):
                if scripts is None:
                    raise WorkflowError(
                        f"script {step.script.name!r} is resolved when the instance starts",
                        step=step_id,
                        field="script",
                    )
                script = scripts(step.script)
            launch = prepare_step(
                graph,
                step_id,
                1,
                hosts=hosts,
                params=params,
                results=PREVIEW,
                run_prefix="dryrun",
                script=script,
            )
        except (WorkflowError, ValidationError) as exc:
            out.append(replace(base, problem=exc.message))
            continue
        skipped = dict(launch.problems)
        for host in hosts:
            why = skip_reason(host, launch.shell.value)
            if why is not None:
                skipped[host.name] = why
        first_plan = next(iter(launch.plans.values()), None)
        t = launch.throttle
        out.append(
            replace(
                base,
                hosts=tuple(h.name for h in hosts),
                shell=launch.shell.value,
                throttle={"forks": t.forks, "per_group": t.per_group, "delay": t.delay},
                timeout=launch.timeout,
                bodies={h: b for h, b in launch.bodies.items() if h not in skipped},
                env=_env_shown(first_plan.env) if first_plan is not None else {},
                skipped=skipped,
                problem=None if hosts else "its targets match no host",
            )
        )
    return out
