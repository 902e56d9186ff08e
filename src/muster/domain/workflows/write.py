"""Write a workflow definition back as plain data (the canonical form) and hash it.

:func:`workflow_to_dict` is what the stores keep and the API shows;
:func:`muster.domain.workflows.parse.parse_workflow` reads it back unchanged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from muster.domain.throttle import Throttle
from muster.domain.workflows.model import Step, StepType, Workflow
from muster.domain.workflows.rollout_parse import rollout_to_dict, verifications_to_dict

__all__ = ["workflow_hash", "workflow_to_dict"]


def workflow_to_dict(workflow: Workflow) -> dict[str, Any]:
    """The canonical JSON-ready form; :func:`parse_workflow` reads it back unchanged."""
    out: dict[str, Any] = {"name": workflow.name}
    if workflow.description:
        out["description"] = workflow.description
    if workflow.parameters:
        out["parameters"] = [p.to_dict() for p in workflow.parameters]
    if workflow.env:
        out["env"] = dict(workflow.env)
    if workflow.targets:
        out["targets"] = workflow.targets
    if workflow.throttle != Throttle():
        out["throttle"] = _throttle_dict(workflow.throttle)
    out["steps"] = [_step_dict(s) for s in workflow.steps]
    if workflow.rollout is not None:
        out["rollout"] = rollout_to_dict(workflow.rollout)
    if workflow.verifications:
        out["verifications"] = verifications_to_dict(workflow.verifications)
    if workflow.windows:
        out["windows"] = dict(workflow.windows)
    return out


def _throttle_dict(t: Throttle) -> dict[str, Any]:
    return {
        k: v for k, v in (("forks", t.forks), ("per_group", t.per_group), ("delay", t.delay)) if v
    }


def _step_dict(step: Step) -> dict[str, Any]:
    d: dict[str, Any] = {"id": step.id, "type": step.type.value}
    if step.name:
        d["name"] = step.name
    for key in ("targets", "on_success", "on_failure", "timeout"):
        value = getattr(step, key)
        if value is not None:
            d[key] = value
    if step.depends_on:
        d["depends_on"] = list(step.depends_on)
    if step.retries:
        d["retries"] = step.retries
    if step.retry_delay:
        d["retry_delay"] = step.retry_delay
    if step.env:
        d["env"] = dict(step.env)
    if step.throttle != Throttle():
        d["throttle"] = _throttle_dict(step.throttle)
    if step.idempotent:
        d["idempotent"] = True
    if step.rollback is not None:
        d["rollback"] = step.rollback
    if step.type is StepType.COMMAND:
        d["command"] = step.command
        d["shell"] = step.shell.value
    elif step.type is StepType.SCRIPT:
        ref = step.script
        assert ref is not None
        if ref.body is not None:
            d["body"] = ref.body
        else:
            d["script"] = ref.name
            if ref.version is not None:
                d["version"] = ref.version
            if ref.hash is not None:
                d["hash"] = ref.hash
        d["shell"] = ref.shell.value
        if step.parameters:
            d["parameters"] = dict(step.parameters)
    elif step.type is StepType.JOB:
        assert step.job is not None
        d["job"] = step.job.value
        if step.job_fields:
            d["fields"] = dict(step.job_fields)
    elif step.type is StepType.APPROVAL:
        a = step.approval
        assert a is not None
        d["approval"] = {"policy": a.policy.value, "approvers": list(a.approvers)}
        if a.timeout is not None:
            d["approval"]["timeout"] = a.timeout
        if a.title:
            d["approval"]["title"] = a.title
    elif step.type is StepType.CONDITIONAL:
        c = step.conditional
        assert c is not None
        d["config"] = {
            k: v
            for k, v in (
                ("condition", c.condition),
                ("on_true", c.on_true),
                ("on_false", c.on_false),
            )
            if v is not None
        }
    else:
        dl = step.delay
        assert dl is not None
        if dl.until is not None:
            d["until"] = dl.until.isoformat()
        else:
            d["seconds"] = dl.seconds
    return d


def workflow_hash(workflow: Workflow) -> str:
    """SHA-256 of the canonical form: saving identical content creates no new version."""
    blob = json.dumps(
        workflow_to_dict(workflow), sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()
