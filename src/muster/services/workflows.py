"""Workflows for a caller: push, check, start (or preview), act on instances, read them.

What the API, the console and (through the API) the CLI call; the driver
(:mod:`muster.services.workflow_driver`) does the running. Every change is
audited with the caller. Starting pins what runs: the definition's version
and, for a script step naming a library script, the script version (by
number, by hash, else the latest at start), so what was started is what
runs however the library changes later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from muster.domain.approval_rules import approval_policy
from muster.domain.params import coerce_values
from muster.domain.rollout_plan import rollout_keys
from muster.domain.secret import MASK, Secret
from muster.domain.workflows import (
    InstanceState,
    StepType,
    Workflow,
    WorkflowError,
    load_workflow_text,
    parse_workflow,
    validate,
)
from muster.domain.workflows.machine import Event, Kill, Pause, Resume, ResumeFailed, Retry
from muster.domain.workflows.render import PREVIEW, prepare_step, step_targets
from muster.engine.workflow_store import InstanceRecord, WorkflowRecord
from muster.errors import NotFoundError, ValidationError
from muster.services.actor import Actor
from muster.services.approvals import Approvals
from muster.services.local_hosts import local_names, require_local_permission
from muster.services.rollout_driver import ROLLOUT
from muster.services.submission import resolve_hosts
from muster.services.workflow_driver import WorkflowDriver, actor_context
from muster.store.protocols import ServerStore
from muster.store.workflow_durable import InstanceDetail

__all__ = ["ACTIONS", "Checked", "Workflows", "parse_definition"]

#: The actions seed 003 names on an instance or a step, plus retry; a rollout's
#: instance also takes abort (kill: no rollback) and rollback (on request).
ACTIONS = ("pause", "resume", "kill", "retry", "abort", "rollback")


@dataclass(frozen=True, slots=True)
class Checked:
    """A definition checked for an editor: the parsed workflow, or the problem."""

    workflow: Workflow | None
    problem: WorkflowError | ValidationError | None


def parse_definition(source: str | None, definition: Mapping[str, Any] | None) -> Workflow:
    """The workflow in ``source`` (YAML/JSON text) or ``definition`` (data), validated
    as a graph; a WorkflowError names the step and the field."""
    if source is not None and definition is not None:
        raise ValidationError("give source or definition, not both", field="source")
    if source is not None:
        workflow = load_workflow_text(source)
    elif definition is not None:
        workflow = parse_workflow(definition)
    else:
        raise ValidationError("a workflow definition is required", field="source")
    validate(workflow)
    return workflow


class Workflows:
    """The workflow service over a store, the approvals and the driver."""

    def __init__(self, store: ServerStore, approvals: Approvals, driver: WorkflowDriver) -> None:
        self.store = store
        self.approvals = approvals
        self.driver = driver

    # -- definitions ---------------------------------------------------------------

    def check(self, source: str | None, definition: Mapping[str, Any] | None = None) -> Checked:
        try:
            workflow = parse_definition(source, definition)
            self._check_scripts(workflow)
        except (WorkflowError, ValidationError) as exc:
            return Checked(None, exc)
        return Checked(workflow, None)

    def _check_scripts(self, workflow: Workflow) -> None:
        for step in workflow.steps:
            ref = step.script
            if step.type is StepType.SCRIPT and ref is not None and ref.name is not None:
                try:
                    self.store.get_script(ref.name)
                except NotFoundError:
                    raise WorkflowError(
                        f"no script {ref.name!r} in the library", step=step.id, field="script"
                    ) from None

    def push(
        self,
        actor: Actor,
        source: str | None,
        definition: Mapping[str, Any] | None = None,
    ) -> tuple[WorkflowRecord, bool]:
        """Save by name: changed content is version N+1, identical content none."""
        workflow = parse_definition(source, definition)
        self._check_scripts(workflow)
        record, created = self.store.save_workflow(workflow, created_by=actor.name, source=source)
        if created:
            self.store.record_audit(
                actor=actor.name,
                action="workflow.save",
                target=f"workflow:{record.name}",
                address=actor.address,
                details={"version": record.version, "content_hash": record.content_hash},
            )
        return record, created

    def delete(self, actor: Actor, name: str) -> None:
        record = self.store.get_workflow(name)
        self.store.delete_workflow(record.name)
        self.store.record_audit(
            actor=actor.name,
            action="workflow.delete",
            target=f"workflow:{record.name}",
            address=actor.address,
        )

    # -- starting ------------------------------------------------------------------

    def _pins(self, workflow: Workflow) -> dict[str, dict[str, Any]]:
        pins: dict[str, dict[str, Any]] = {}
        for step in workflow.steps:
            ref = step.script
            if step.type is not StepType.SCRIPT or ref is None or ref.name is None:
                continue
            try:
                script = self.store.get_script(ref.name)
                if ref.hash is not None:
                    found = [
                        v for v in self.store.list_versions(script.id) if v.content_hash == ref.hash
                    ]
                    if not found:
                        raise NotFoundError(
                            f"script {ref.name!r} has no version with hash {ref.hash}"
                        )
                    version = found[0]
                else:
                    version = self.store.get_version(script.id, ref.version)
            except NotFoundError as exc:
                raise WorkflowError(str(exc), step=step.id, field="script") from None
            pins[step.id] = {
                "script_id": version.script_id,
                "number": version.number,
                "content_hash": version.content_hash,
            }
        return pins

    def start(
        self,
        actor: Actor,
        name: str,
        raw_params: Mapping[str, object],
        *,
        targets: str | None = None,
        version: int | None = None,
        dry_run: bool = False,
    ) -> InstanceRecord | dict[str, Any]:
        """Start an instance (queued; the driver runs it), or with ``dry_run`` return
        the plan per step and host with nothing stored or queued."""
        record = self.store.get_workflow(name, version)
        workflow = record.workflow
        graph = validate(workflow)
        params = coerce_values(workflow.parameters, dict(raw_params))
        pins = self._pins(workflow)
        # The server's own machine (without hosts.local) is refused before anything is
        # stored. A selector matching nothing fails its step when it starts, as in-process.
        hosts_of: dict[str, list[Any]] = {}
        for sid, step in graph.steps.items():
            if not step.type.runs_on_hosts:
                continue
            selector = step_targets(graph, step, params, targets)
            try:
                hosts = resolve_hosts(self.store, [selector])
            except ValidationError:
                hosts_of[sid] = []
                continue
            require_local_permission(actor, local_names(hosts), doing="run a workflow step on")
            hosts_of[sid] = hosts
        if dry_run:
            return self._plan(record, graph, params, pins, hosts_of)
        context = {"actor": actor_context(actor), "pins": pins}
        if rollout_keys(workflow):
            # Waves, captures or windows: the rollout driver plans the waves now and
            # runs each wave's hosts as instances of their own.
            instance = self.driver.rollouts.start(
                record, params, targets=targets, created_by=actor.name, context=context
            )
        else:
            instance = self.store.create_instance(
                record,
                InstanceState.new([s.id for s in workflow.steps]),
                params=params,
                targets=targets,
                created_by=actor.name,
                context=context,
            )
        self.store.record_audit(
            actor=actor.name,
            action="workflow.start",
            target=f"workflow_instance:{instance.id}",
            address=actor.address,
            details={
                "workflow": record.name,
                "version": record.version,
                "content_hash": record.content_hash,
                "parameters": dict(instance.params),
                "targets": targets,
                "pins": pins,
            },
            secret_keys=[k for k, v in params.items() if isinstance(v, Secret)],
        )
        return instance

    def _plan(
        self,
        record: WorkflowRecord,
        graph: Any,
        params: Mapping[str, Any],
        pins: Mapping[str, Mapping[str, Any]],
        hosts_of: Mapping[str, list[Any]],
    ) -> dict[str, Any]:
        steps: list[dict[str, Any]] = []
        for step in record.workflow.steps:
            entry: dict[str, Any] = {
                "id": step.id,
                "type": step.type.value,
                "depends_on": list(step.depends_on),
                "routes": dict(step.routes()),
            }
            if step.type.runs_on_hosts:
                hosts = hosts_of.get(step.id)
                if hosts is None:
                    entry["hosts"] = "decided when the step starts (targets read a parameter)"
                    steps.append(entry)
                    continue
                pin = pins.get(step.id)
                script = (
                    self.store.get_version(pin["script_id"], pin["number"]).domain()
                    if pin
                    else None
                )
                launch = prepare_step(
                    graph,
                    step.id,
                    1,
                    hosts=hosts,
                    params=params,
                    results=PREVIEW,
                    run_prefix="dryrun",
                    script=script,
                )
                kind = "script" if pin else ("job" if step.type is StepType.JOB else "command")
                need = self.approvals.need_for(kind, hosts, pin["script_id"] if pin else None)
                entry.update(
                    shell=launch.shell.value,
                    timeout=launch.timeout,
                    throttle={
                        "forks": launch.throttle.forks,
                        "per_group": launch.throttle.per_group,
                        "delay": launch.throttle.delay,
                    },
                    waits_for=approval_policy(need),
                    hosts=[
                        {
                            "host": h.name,
                            "selected": h.name in launch.plans and h.has_shell(launch.shell.value),
                            "problem": launch.problems.get(h.name)
                            or (
                                None
                                if h.has_shell(launch.shell.value)
                                else f"host does not advertise shell {launch.shell.value}"
                            ),
                            "body": launch.bodies.get(h.name),
                            "env": {
                                k: MASK if isinstance(v, Secret) else v
                                for k, v in sorted(launch.plans[h.name].env.items())
                            }
                            if h.name in launch.plans
                            else {},
                        }
                        for h in hosts
                    ],
                )
                if pin:
                    entry["script"] = dict(pin)
            elif step.type is StepType.APPROVAL and step.approval is not None:
                entry["waits_for"] = {
                    "approval": {
                        "policy": step.approval.policy.value,
                        "approvers": list(step.approval.approvers),
                        "timeout": step.approval.timeout,
                    }
                }
            elif step.type is StepType.DELAY and step.delay is not None:
                entry["waits_for"] = {
                    "delay": {
                        "seconds": step.delay.seconds,
                        "until": step.delay.until.isoformat() if step.delay.until else None,
                    }
                }
            elif step.conditional is not None:
                entry["condition"] = step.conditional.condition
            steps.append(entry)
        return {
            "dry_run": True,
            "queued": False,
            "workflow": record.name,
            "version": record.version,
            "content_hash": record.content_hash,
            "parameters": {k: MASK if isinstance(v, Secret) else v for k, v in params.items()},
            "steps": steps,
        }

    # -- acting on instances ---------------------------------------------------------

    def act(
        self,
        actor: Actor,
        instance_id: str,
        action: str,
        *,
        step: str | None = None,
        duration: float | None = None,
    ) -> InstanceDetail:
        """Seed 003's ``pause|resume|kill`` (and ``retry``) of an instance or one step;
        ``duration`` pauses for that many seconds. Retry of an instance resumes a failed
        one from its failed steps. Audited; ConflictError when it does not apply."""
        detail = self.store.instance_detail(instance_id)
        record = detail.record
        if step is not None and step not in record.state.steps:
            raise NotFoundError(f"instance {instance_id} has no step {step!r}")
        if ROLLOUT in detail.context:
            if step is not None:
                raise ValidationError(
                    "a rollout is paused, resumed, aborted or rolled back as a whole",
                    field="step",
                )
            if action == "pause" and duration is not None:
                raise ValidationError("a rollout pauses until resumed", field="duration")
            self.driver.rollouts.act(instance_id, action)
            self._audit_action(actor, instance_id, action, step, duration)
            return self.store.instance_detail(instance_id)
        event: Event
        if action == "pause":
            until = None
            if duration is not None:
                if duration <= 0:
                    raise ValidationError("duration must be positive", field="duration")
                until = self.store.clock() + dt.timedelta(seconds=duration)
            event = Pause(step, until)
        elif action == "resume":
            event = Resume(step)
        elif action == "kill":
            event = Kill(step)
        elif action == "retry":
            event = Retry(step) if step is not None else ResumeFailed()
        elif action in ("abort", "rollback"):
            raise ValidationError(
                f"{action} applies to a rollout; this instance is a plain workflow (kill it)",
                field="action",
            )
        else:
            raise ValidationError(
                f"unknown action {action!r} (one of {', '.join(ACTIONS)})", field="action"
            )
        self.driver.apply(instance_id, event)
        self._audit_action(actor, instance_id, action, step, duration)
        return self.store.instance_detail(instance_id)

    def _audit_action(
        self,
        actor: Actor,
        instance_id: str,
        action: str,
        step: str | None,
        duration: float | None,
    ) -> None:
        self.store.record_audit(
            actor=actor.name,
            action=f"workflow.{action}",
            target=f"workflow_instance:{instance_id}" + (f":{step}" if step else ""),
            address=actor.address,
            details={"duration": duration} if duration is not None else None,
        )
